"""Generated input against the HMAC verifier (`badges/domain/signatures.py`): any header text
raises only `SignatureError`; a genuine signature verifies; and any change to the body, the
timestamp, the signature or the secret is refused. `make fuzz` runs many more examples."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from badges.domain.signatures import SCHEME, SignatureError, parse, sign, signature, verify

pytestmark = pytest.mark.fuzz

NOW = 1_795_600_000
TOLERANCE = 300

secrets = st.binary(min_size=1, max_size=64)
bodies = st.binary(max_size=2048)
in_window = st.integers(NOW - TOLERANCE, NOW + TOLERANCE)
hex_digest = st.text("0123456789abcdef", min_size=64, max_size=64)
# Header-like text: the parser's own vocabulary mixed with anything else.
header_items = st.one_of(
    st.builds(lambda t: f"t={t}", st.one_of(st.integers(), st.text(max_size=12))),
    st.builds(lambda s: f"{SCHEME}={s}", st.one_of(hex_digest, st.text(max_size=70))),
    st.text(max_size=30),
)
headers = st.one_of(st.text(max_size=1100), st.lists(header_items, max_size=6).map(",".join))


@given(header=headers, secret=secrets, body=bodies)
def test_any_header_is_refused_with_a_reason_or_verifies(header: str, secret: bytes, body: bytes) -> None:
    try:
        matched = verify(secret, header, body, now=NOW)
    except SignatureError as error:
        assert error.reason in ("malformed", "stale", "mismatch")
        return
    # Accepted only by carrying the signature of this body, at a time within the window.
    timestamp, candidates = parse(header)
    assert matched == signature(secret, timestamp, body) and matched in candidates


@given(secret=secrets, body=bodies, timestamp=in_window)
def test_a_genuine_signature_verifies(secret: bytes, body: bytes, timestamp: int) -> None:
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert verify(secret, sign(secret, timestamp, body), body, now=NOW) == expected


@given(secret=secrets, body=bodies, timestamp=in_window, data=st.data())
def test_a_changed_body_is_refused(secret: bytes, body: bytes, timestamp: int, data: st.DataObject) -> None:
    header = sign(secret, timestamp, body)
    changed = data.draw(
        st.one_of(
            bodies,
            st.builds(lambda extra: body + extra, st.binary(min_size=1, max_size=8)),
            st.integers(0, max(0, len(body) - 1)).map(lambda cut: body[:cut]),
            st.integers(0, max(0, len(body) - 1)).flatmap(
                lambda at: st.integers(1, 255).map(
                    lambda flip: body[:at] + bytes([body[at] ^ flip]) + body[at + 1 :] if body else b"\x00"
                )
            ),
        )
    )
    assume(changed != body)
    with pytest.raises(SignatureError) as refused:
        verify(secret, header, changed, now=NOW)
    assert refused.value.reason == "mismatch"


@given(secret=secrets, body=bodies, timestamp=in_window, other=in_window)
def test_a_signature_moved_to_another_timestamp_is_refused(
    secret: bytes, body: bytes, timestamp: int, other: int
) -> None:
    assume(other != timestamp)
    moved = f"t={other},{SCHEME}={signature(secret, timestamp, body)}"
    with pytest.raises(SignatureError) as refused:
        verify(secret, moved, body, now=NOW)
    assert refused.value.reason == "mismatch"


@given(secret=secrets, body=bodies, timestamp=st.integers(0, 2 * NOW))
def test_a_timestamp_outside_the_window_is_stale_even_when_signed(secret: bytes, body: bytes, timestamp: int) -> None:
    assume(abs(NOW - timestamp) > TOLERANCE)
    with pytest.raises(SignatureError) as refused:
        verify(secret, sign(secret, timestamp, body), body, now=NOW)
    assert refused.value.reason == "stale"


@given(secret=secrets, other=secrets, body=bodies, timestamp=in_window)
def test_another_secret_is_refused(secret: bytes, other: bytes, body: bytes, timestamp: int) -> None:
    assume(hmac.new(other, b"", "sha256").digest() != hmac.new(secret, b"", "sha256").digest())
    with pytest.raises(SignatureError) as refused:
        verify(secret, sign(other, timestamp, body), body, now=NOW)
    assert refused.value.reason == "mismatch"


@given(
    secret=secrets, body=bodies, timestamp=in_window, at=st.integers(0, 63), digit=st.sampled_from("0123456789abcdef")
)
def test_a_changed_signature_digit_is_refused(secret: bytes, body: bytes, timestamp: int, at: int, digit: str) -> None:
    genuine = signature(secret, timestamp, body)
    assume(genuine[at] != digit)
    forged = genuine[:at] + digit + genuine[at + 1 :]
    with pytest.raises(SignatureError) as refused:
        verify(secret, f"t={timestamp},{SCHEME}={forged}", body, now=NOW)
    assert refused.value.reason == "mismatch"
