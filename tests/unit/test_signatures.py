"""Signed requests: the header format, the clock window, rotation and what counts as a replay."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from badges.domain.signatures import SignatureError, sign, signature, verify

SECRET = b"integration-secret"
OTHER = b"another-secret"
BODY = b'{"id":"e1","type":"attendance"}'
NOW = 1_795_600_000


def test_the_header_is_an_hmac_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"t={NOW},v1={expected}"
    assert verify(SECRET, sign(SECRET, NOW, BODY), BODY, now=NOW) == expected


def test_a_signature_within_the_window_passes_either_side_of_the_clock() -> None:
    for timestamp in (NOW - 300, NOW + 300, NOW - 5):
        assert verify(SECRET, sign(SECRET, timestamp, BODY), BODY, now=NOW) == signature(SECRET, timestamp, BODY)


@pytest.mark.parametrize("timestamp", [NOW - 301, NOW + 301, 0])
def test_a_timestamp_outside_the_window_is_stale(timestamp: int) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(SECRET, sign(SECRET, timestamp, BODY), BODY, now=NOW)
    assert caught.value.reason == "stale"


def test_the_tolerance_is_a_parameter() -> None:
    header = sign(SECRET, NOW - 30, BODY)
    assert verify(SECRET, header, BODY, now=NOW, tolerance_s=30)
    with pytest.raises(SignatureError) as caught:
        verify(SECRET, header, BODY, now=NOW, tolerance_s=29)
    assert caught.value.reason == "stale"


@pytest.mark.parametrize(
    "tampered",
    [
        {"secret": OTHER},
        {"body": BODY + b" "},
        {"body": b""},
    ],
)
def test_a_different_secret_or_body_is_a_mismatch(tampered: dict[str, bytes]) -> None:
    header = sign(SECRET, NOW, BODY)
    with pytest.raises(SignatureError) as caught:
        verify(tampered.get("secret", SECRET), header, tampered.get("body", BODY), now=NOW)
    assert caught.value.reason == "mismatch"


def test_a_changed_timestamp_is_a_mismatch() -> None:
    v1 = signature(SECRET, NOW, BODY)
    with pytest.raises(SignatureError) as caught:
        verify(SECRET, f"t={NOW - 1},v1={v1}", BODY, now=NOW)
    assert caught.value.reason == "mismatch"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"v1={'a' * 64}",  # no timestamp
        f"t={NOW}",  # no signature
        f"t={NOW},v0={'a' * 64}",  # only an unknown scheme
        f"t=soon,v1={'a' * 64}",
        f"t=-{NOW},v1={'a' * 64}",
        f"t={NOW},t={NOW},v1={'a' * 64}",
        f"t={NOW},v1=abc",  # too short
        f"t={NOW},v1={'g' * 64}",  # not hex
        f"t={NOW},v1={'a' * 65}",
        f"t={NOW};v1={'a' * 64}",
        f"t={NOW},v1={'a' * 64}," + "x" * 2000,
        "t=١٢٣,v1=" + "a" * 64,  # non-ASCII digits
    ],
)
def test_malformed_headers_are_refused_as_such(header: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(SECRET, header, BODY, now=NOW)
    assert caught.value.reason == "malformed"


def test_any_of_several_signatures_may_match_while_a_sender_rotates() -> None:
    old, new = signature(OTHER, NOW, BODY), signature(SECRET, NOW, BODY)
    assert verify(SECRET, f"t={NOW},v1={old},v1={new}", BODY, now=NOW) == new
    assert verify(OTHER, f"t={NOW}, v1={old}, v1={new}", BODY, now=NOW) == old
    with pytest.raises(SignatureError) as caught:
        verify(b"third", f"t={NOW},v1={old},v1={new}", BODY, now=NOW)
    assert caught.value.reason == "mismatch"


def test_unknown_schemes_are_ignored() -> None:
    header = f"t={NOW},v0=whatever,v1={signature(SECRET, NOW, BODY)}"
    assert verify(SECRET, header, BODY, now=NOW) == signature(SECRET, NOW, BODY)


def test_a_re_encoded_header_answers_the_same_signature_for_replay_bookkeeping() -> None:
    canonical = verify(SECRET, sign(SECRET, NOW, BODY), BODY, now=NOW)
    upper = f"t={NOW},v1={signature(SECRET, NOW, BODY).upper()},v1={'0' * 64}"
    assert verify(SECRET, upper, BODY, now=NOW) == canonical
