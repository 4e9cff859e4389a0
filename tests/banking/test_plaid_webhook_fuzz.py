"""Generated input against our Plaid webhook verifier, with the sandbox bank's own ES256 key and
key endpoint: any `Plaid-Verification` text is refused with a `ProviderError` (never another
exception, never a notice); a genuine webhook changed anywhere (body, token, claims, algorithm,
key id, issue time) is refused; and whatever Plaid's key signs, the verifier answers a notice or
refuses it, without crashing. `make fuzz` runs many more examples."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from badges.banking.plaid import PlaidProvider
from badges.banking.provider import ProviderError
from badges.banking.sandbox import SandboxSettings, create_sandbox_app
from badges.banking.sandbox.plaid.webhooks import WebhookSigner
from tests.sandbox.conftest import CLIENT_ID, SECRET
from tests.support import serving

pytestmark = pytest.mark.fuzz

BODY = json.dumps(
    {"webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE", "item_id": "item-1"}, indent=2
).encode()
STRANGER = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
# The module-scoped bank is shared by every example.
SHARED = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
async def bank() -> AsyncIterator[tuple[PlaidProvider, WebhookSigner]]:
    app = create_sandbox_app(SandboxSettings())
    async with serving(app) as url:
        yield PlaidProvider(url, CLIENT_ID, SECRET), app.state.sandbox.signer


def part(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unpart(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def by_hand(header: dict[str, Any], claims: Any, sign: Any = None) -> str:
    """A JWT assembled without PyJWT's checks (an attacker's would not have them); `sign` makes the
    signature from the signing input, else it is empty."""
    head = part(json.dumps(header).encode())
    body = part(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    return f"{head}.{body}.{part(sign(signing_input)) if sign else ''}"


def claims_for(body: bytes, issued_at: int) -> dict[str, Any]:
    return {"iat": issued_at, "request_body_sha256": hashlib.sha256(body).hexdigest()}


async def refused(provider: PlaidProvider, body: bytes, token: str) -> ProviderError:
    try:
        notice = await provider.verify_webhook(body, {"plaid-verification": token})
    except ProviderError as error:
        assert error.kind == "invalid", error
        return error
    raise AssertionError(f"accepted: {notice}")


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)
jwt_shaped = st.builds(
    lambda header, claims, signature: (
        f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}.{signature}"
    ),
    st.one_of(json_values, st.fixed_dictionaries({"alg": st.text(max_size=8), "kid": json_values})),
    json_values,
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=90),
)


@SHARED
# Any code point, lone surrogates too: more than an HTTP header can carry.
@given(
    token=st.one_of(
        st.text(max_size=300),
        st.builds(lambda a, s, b: a + s + b, st.text(max_size=20), st.characters(categories=["Cs"]), jwt_shaped),
        jwt_shaped,
    )
)
async def test_any_verification_text_is_refused_cleanly(bank: tuple[PlaidProvider, WebhookSigner], token: str) -> None:
    provider, _ = bank
    assume(token)
    await refused(provider, BODY, token)


@SHARED
@given(data=st.data())
async def test_a_genuine_webhook_changed_anywhere_is_refused(
    bank: tuple[PlaidProvider, WebhookSigner], data: st.DataObject
) -> None:
    provider, signer = bank
    now = int(time.time())
    genuine = signer.sign(BODY, now)
    change = data.draw(st.sampled_from(["body", "token", "segment"]))
    if change == "body":
        body = data.draw(
            st.one_of(
                st.binary(max_size=200),
                st.integers(0, len(BODY) - 1).flatmap(
                    lambda at: st.integers(1, 255).map(
                        lambda flip: BODY[:at] + bytes([BODY[at] ^ flip]) + BODY[at + 1 :]
                    )
                ),
                st.binary(min_size=1, max_size=4).map(lambda extra: BODY + extra),
            )
        )
        assume(body != BODY)
        assert (await refused(provider, body, genuine)).code == "BODY_MISMATCH"
        return
    if change == "token":
        at = data.draw(st.integers(0, len(genuine) - 1))
        character = data.draw(st.characters(codec="ascii"))
        token = genuine[:at] + character + genuine[at + 1 :]
    else:  # one whole segment replaced by another token's
        other = signer.sign(BODY + b" ", now)
        index = data.draw(st.integers(0, 2))
        segments = genuine.split(".")
        segments[index] = other.split(".")[index]
        token = ".".join(segments)
    assume(token != genuine)
    try:
        await provider.verify_webhook(BODY, {"plaid-verification": token})
    except ProviderError as error:
        assert error.kind == "invalid"
        return
    # Accepted only if it is the same token after all: base64url's last character of the
    # signature carries unused bits, so two spellings decode to the same signed bytes.
    head, claims, signature = token.split(".")
    original = genuine.split(".")
    assert (head, claims) == tuple(original[:2]) and unpart(signature) == unpart(original[2])


def signer_of(algorithm: Any, key: Any) -> Any:
    return lambda signing_input: algorithm.sign(signing_input, key)


ES256_STRANGER = signer_of(jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256), STRANGER)
ES384_STRANGER = signer_of(
    jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA384), ec.generate_private_key(ec.SECP384R1())
)
RS256 = signer_of(jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256), RSA_KEY)


def forgeries(signer: WebhookSigner, now: int) -> st.SearchStrategy[str]:
    """Tokens an attacker (or a confused sender) can make: right claims, wrong everything else."""
    claims = claims_for(BODY, now)
    public = json.dumps(signer.jwk()).encode()
    kids = st.one_of(
        st.just(signer.kid), st.text(max_size=40), st.integers(), st.lists(st.text(max_size=3), max_size=2)
    )

    def hmac_with_public_key(alg: str) -> Any:
        return lambda signing_input: hmac.new(public, signing_input, getattr(hashlib, f"sha{alg[2:]}")).digest()

    return st.one_of(
        # alg confusion: none, HMAC keyed with what anyone can fetch, another curve or family.
        kids.map(lambda kid: by_hand({"alg": "none", "kid": kid}, claims)),
        st.sampled_from(["HS256", "HS384", "HS512"]).flatmap(
            lambda alg: kids.map(lambda kid: by_hand({"alg": alg, "kid": kid}, claims, hmac_with_public_key(alg)))
        ),
        kids.map(lambda kid: by_hand({"alg": "RS256", "kid": kid}, claims, RS256)),
        kids.map(lambda kid: by_hand({"alg": "ES384", "kid": kid}, claims, ES384_STRANGER)),
        # The right algorithm and a key that is not Plaid's, under Plaid's kid or any other, or none.
        kids.map(lambda kid: by_hand({"alg": "ES256", "kid": kid}, claims, ES256_STRANGER)),
        st.just(by_hand({"alg": "ES256"}, claims, ES256_STRANGER)),
        # A key carried in the header itself (Plaid's public one): only the fetched key counts.
        st.just(by_hand({"alg": "ES256", "kid": signer.kid, "jwk": json.loads(public)}, claims, ES256_STRANGER)),
    )


@SHARED
@given(data=st.data())
async def test_forged_algorithms_and_keys_are_refused(
    bank: tuple[PlaidProvider, WebhookSigner], data: st.DataObject
) -> None:
    provider, signer = bank
    token = data.draw(forgeries(signer, int(time.time())))
    await refused(provider, BODY, token)


@SHARED
@given(
    offset=st.one_of(st.integers(-(10**6), -301), st.integers(301, 10**6)),
)
async def test_an_issue_time_outside_five_minutes_is_refused_even_when_signed_by_plaid(
    bank: tuple[PlaidProvider, WebhookSigner], offset: int
) -> None:
    provider, signer = bank
    await refused(provider, BODY, signer.sign(BODY, int(time.time()) + offset))


odd_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400).map(lambda n: -n),
    st.floats(),
    st.text(alphabet="-0123456789e.", max_size=12),
)


@SHARED
@given(
    iat=st.one_of(json_values, odd_numbers),
    digest=st.one_of(st.none(), json_values, st.text(max_size=70)),
    extra=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)
async def test_claims_plaid_never_sends_are_refused_without_a_crash(
    bank: tuple[PlaidProvider, WebhookSigner], iat: Any, digest: Any, extra: dict[str, Any]
) -> None:
    # Signed with Plaid's own key: an `iat` and a body digest of any JSON type (or none), with
    # other claims beside them. At most one of the two may be right.
    provider, signer = bank
    now = int(time.time())
    fresh = isinstance(iat, int | float) and not isinstance(iat, bool) and abs(iat - now) <= 300
    assume(not fresh or digest != hashlib.sha256(BODY).hexdigest())
    claims = dict(extra)
    for name, value in (("iat", iat), ("request_body_sha256", digest)):
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    token = by_hand(
        {"alg": "ES256", "kid": signer.kid, "typ": "JWT"},
        claims,
        lambda signing_input: raw_es256(signer, signing_input),
    )
    await refused(provider, BODY, token)


def raw_es256(signer: WebhookSigner, signing_input: bytes) -> bytes:
    """The JWS ES256 signature (r || s) with the sandbox's key, over any signing input."""
    return jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256).sign(signing_input, signer._key)


@SHARED
@given(body=st.one_of(st.binary(max_size=300), json_values.map(lambda value: json.dumps(value).encode())))
async def test_whatever_plaid_signs_is_answered_or_refused(
    bank: tuple[PlaidProvider, WebhookSigner], body: bytes
) -> None:
    # A body that is not a JSON object with a text item_id is refused, not a crash.
    provider, signer = bank
    try:
        notice = await provider.verify_webhook(body, {"plaid-verification": signer.sign(body, int(time.time()))})
    except ProviderError as error:
        assert (error.kind, error.code) == ("invalid", "MALFORMED_BODY")
        return
    assert isinstance(notice.item_id, str) and isinstance(notice.kind, str)
