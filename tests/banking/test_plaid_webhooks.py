"""Our Plaid webhook verifier against webhooks signed by the sandbox bank's own ES256 key: a
genuine one passes; a changed body, a stale or future `iat`, `alg: none`, HS256 keyed with the
public key, or a key Plaid never issued are all refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from badges.banking.plaid import PlaidProvider
from badges.banking.provider import ProviderError
from badges.banking.sandbox import SandboxSettings, create_sandbox_app
from badges.banking.sandbox.plaid.webhooks import WebhookSigner
from tests.sandbox.conftest import CLIENT_ID, SECRET
from tests.support import serving

BODY = json.dumps(
    {"webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE", "item_id": "item-1"}
).encode()


@pytest.fixture(scope="module")
async def bank() -> AsyncIterator[tuple[PlaidProvider, WebhookSigner]]:
    app = create_sandbox_app(SandboxSettings())
    async with serving(app) as url:
        yield PlaidProvider(url, CLIENT_ID, SECRET), app.state.sandbox.signer


async def test_a_genuine_webhook_is_accepted(bank: tuple[PlaidProvider, WebhookSigner]) -> None:
    provider, signer = bank
    notice = await provider.verify_webhook(BODY, {"plaid-verification": signer.sign(BODY, int(time.time()))})
    assert notice.item_id == "item-1" and notice.kind == "TRANSACTIONS.SYNC_UPDATES_AVAILABLE"


def hs256(claims: dict[str, object], secret: bytes, kid: str) -> str:
    """By hand: PyJWT rightly refuses to key HMAC with a public key, an attacker would not."""

    def part(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    head = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = part(json.dumps(claims).encode())
    signature = part(hmac.new(secret, head + b"." + body, hashlib.sha256).digest())
    return (head + b"." + body + b"." + signature).decode()


def forged_tokens(signer: WebhookSigner) -> dict[str, str]:
    now = int(time.time())
    claims = {"iat": now, "request_body_sha256": hashlib.sha256(BODY).hexdigest()}
    public_jwk = signer.jwk()  # what anyone can fetch
    stranger = ec.generate_private_key(ec.SECP256R1())
    return {
        "another body": signer.sign(BODY + b" ", now),
        "stale": signer.sign(BODY, now - 6 * 60),
        "from the future": signer.sign(BODY, now + 6 * 60),
        "alg none": jwt.encode(claims, None, algorithm="none", headers={"kid": signer.kid}),
        "HS256 keyed with the public key": hs256(claims, json.dumps(public_jwk).encode(), signer.kid),
        "right kid, wrong key": jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": signer.kid}),
        "a kid Plaid never issued": jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "not-a-kid"}),
        "not a JWT": "not.a.jwt",
    }


@pytest.mark.parametrize(
    "forgery",
    [
        "another body",
        "stale",
        "from the future",
        "alg none",
        "HS256 keyed with the public key",
        "right kid, wrong key",
        "a kid Plaid never issued",
        "not a JWT",
    ],
)
async def test_a_forged_webhook_is_refused(bank: tuple[PlaidProvider, WebhookSigner], forgery: str) -> None:
    provider, signer = bank
    token = forged_tokens(signer)[forgery]
    with pytest.raises(ProviderError) as refused:
        await provider.verify_webhook(BODY, {"plaid-verification": token})
    assert refused.value.kind == "invalid"


def signed_by_plaid(signer: WebhookSigner, claims: dict[str, object]) -> str:
    """Any claims, signed with the sandbox's own key (PyJWT refuses to write some of them)."""

    def part(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    head = part(json.dumps({"alg": "ES256", "kid": signer.kid, "typ": "JWT"}).encode())
    body = part(json.dumps(claims).encode())
    algorithm = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256)
    return (head + b"." + body + b"." + part(algorithm.sign(head + b"." + body, signer._key))).decode()


DEEP = b"[" * 100_000 + b"]" * 100_000


async def test_what_generated_input_found_is_refused_not_a_crash(bank: tuple[PlaidProvider, WebhookSigner]) -> None:
    # Each raised something other than ProviderError (a 500 at /v1/webhooks/plaid): found by
    # tests/banking/test_plaid_webhook_fuzz.py.
    provider, signer = bank
    now = int(time.time())
    cases = {
        "a token that is not ASCII": (BODY, "eyJ\ud800.e30.", "MALFORMED_VERIFICATION"),  # UnicodeEncodeError
        "an iat no float holds": (BODY, signed_by_plaid(signer, {"iat": -(10**400)}), "STALE_WEBHOOK"),
        "a digest with non-ASCII text": (  # TypeError from compare_digest
            BODY,
            signed_by_plaid(signer, {"iat": now, "request_body_sha256": "é" * 64}),
            "BODY_MISMATCH",
        ),
        "a signed body that is not JSON": (b"\x80", signer.sign(b"\x80", now), "MALFORMED_BODY"),
        "a signed body that is a JSON list": (b"[1]", signer.sign(b"[1]", now), "MALFORMED_BODY"),
        "an item_id that is not text": (b'{"item_id": 7}', signer.sign(b'{"item_id": 7}', now), "MALFORMED_BODY"),
        # Read without json.loads recursing to the interpreter's limit (badges/domain/json_input.py).
        "a signed body nested 100,000 deep": (DEEP, signer.sign(DEEP, now), "MALFORMED_BODY"),
    }
    for name, (body, token, code) in cases.items():
        with pytest.raises(ProviderError) as refused:
            await provider.verify_webhook(body, {"plaid-verification": token})
        assert (refused.value.kind, refused.value.code) == ("invalid", code), name
