"""Webhooks signed as Plaid signs them: an ES256 JWT over the SHA-256 of the exact body, key served as a JWK."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import jwt
import pytest
from fastapi import FastAPI, Request
from plaid.exceptions import ApiException
from plaid.model.sandbox_item_fire_webhook_request import SandboxItemFireWebhookRequest
from plaid.model.webhook_verification_key_get_request import WebhookVerificationKeyGetRequest

from tests.sandbox.conftest import Sandbox, call, serving
from tests.sandbox.contract import assert_complete


@dataclass
class Delivery:
    body: bytes
    verification: str


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, asyncio.Queue[Delivery]]]:
    """A webhook endpoint that records what it is sent."""
    received: asyncio.Queue[Delivery] = asyncio.Queue()
    app = FastAPI()

    @app.post("/hooks/plaid")
    async def hook(request: Request) -> dict[str, bool]:
        await received.put(Delivery(await request.body(), request.headers.get("Plaid-Verification", "")))
        return {"ok": True}

    async with serving(app) as url:
        yield f"{url}/hooks/plaid", received


async def fire(sandbox: Sandbox, token: str, code: str) -> None:
    request = SandboxItemFireWebhookRequest(access_token=token, webhook_code=code)
    assert (await call(sandbox.api.sandbox_item_fire_webhook, request)).webhook_fired


async def test_sync_updates_available_verifies_with_the_published_key(
    sandbox: Sandbox, receiver: tuple[str, asyncio.Queue[Delivery]]
) -> None:
    url, received = receiver
    token = await sandbox.link(webhook=url)
    await fire(sandbox, token, "SYNC_UPDATES_AVAILABLE")
    delivery = await asyncio.wait_for(received.get(), 5)

    header = jwt.get_unverified_header(delivery.verification)
    assert (header["alg"], header["typ"]) == ("ES256", "JWT")
    response = await call(
        sandbox.api.webhook_verification_key_get, WebhookVerificationKeyGetRequest(key_id=header["kid"])
    )
    assert_complete(response)
    key = response.key.to_dict()
    assert (key["alg"], key["crv"], key["kty"], key["use"], key["kid"]) == (
        "ES256",
        "P-256",
        "EC",
        "sig",
        header["kid"],
    )
    assert key["expired_at"] is None
    claims = jwt.decode(delivery.verification, jwt.PyJWK(key).key, algorithms=["ES256"])
    assert abs(time.time() - claims["iat"]) < 300
    assert claims["request_body_sha256"] == hashlib.sha256(delivery.body).hexdigest()

    body = json.loads(delivery.body)
    assert body == {
        "webhook_type": "TRANSACTIONS",
        "webhook_code": "SYNC_UPDATES_AVAILABLE",
        "item_id": body["item_id"],
        "initial_update_complete": True,
        "historical_update_complete": True,
        "environment": "sandbox",
    }
    assert json.dumps(body).encode() != delivery.body, "hash the raw bytes: re-serialising changes them"


async def test_a_tampered_body_no_longer_matches(
    sandbox: Sandbox, receiver: tuple[str, asyncio.Queue[Delivery]]
) -> None:
    url, received = receiver
    token = await sandbox.link(webhook=url)
    await fire(sandbox, token, "ERROR")
    delivery = await asyncio.wait_for(received.get(), 5)
    body = json.loads(delivery.body)
    assert (body["webhook_type"], body["error"]["error_code"]) == ("ITEM", "ITEM_LOGIN_REQUIRED")
    claims = jwt.decode(delivery.verification, options={"verify_signature": False})
    tampered = delivery.body.replace(b"ITEM_LOGIN_REQUIRED", b"NOTHING_WRONG_HERE_")
    assert claims["request_body_sha256"] != hashlib.sha256(tampered).hexdigest()


@pytest.mark.parametrize(
    ("webhook", "code"), [("http://127.0.0.1:9/x", "NOT_A_CODE"), (None, "SYNC_UPDATES_AVAILABLE")]
)
async def test_unfireable_webhooks_are_sandbox_errors(sandbox: Sandbox, webhook: str | None, code: str) -> None:
    token = await sandbox.link(webhook=webhook)
    with pytest.raises(ApiException) as raised:
        await fire(sandbox, token, code)
    assert json.loads(raised.value.body)["error_code"] == "SANDBOX_WEBHOOK_INVALID"
