"""Consent through the API: a grant projected and announced, an over-long grant refused, a revocation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support import collect, dev_token, sse_events

pytestmark = pytest.mark.usefixtures("worker")


async def _status(client: httpx.AsyncClient, headers: dict[str, str], wanted: str) -> dict[str, object]:
    for _ in range(200):
        scopes = (await client.get("/v1/me/consent", headers=headers)).json()["scopes"]
        if scopes.get("open_banking", {}).get("status") == wanted:
            return scopes["open_banking"]  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"consent never became {wanted}")


async def test_a_member_grants_and_revokes_consent(client: httpx.AsyncClient) -> None:
    headers = await dev_token(client, f"{uuid.uuid4()}@example.com")
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    async with client.stream("GET", "/v1/me/stream", headers=headers) as stream:
        events = sse_events(stream)
        body = {"scopes": {"open_banking": {"purpose": "budgeting", "expiresAt": expires}}}
        response = await client.put("/v1/me/consent", json=body, headers=headers)
        assert response.status_code == 202
        [insight] = await collect(events, 1)
        assert insight.data["type"] == "consent"
        assert insight.data["status"] == "granted"
    granted = await _status(client, headers, "active")
    assert granted["purpose"] == "budgeting"

    revoked = await client.put("/v1/me/consent", json={"scopes": {"open_banking": None}}, headers=headers)
    assert revoked.status_code == 202
    await _status(client, headers, "revoked")


async def test_an_over_long_open_banking_grant_is_refused(client: httpx.AsyncClient) -> None:
    headers = await dev_token(client, f"{uuid.uuid4()}@example.com")
    expires = (datetime.now(UTC) + timedelta(days=91)).isoformat()
    body = {"scopes": {"open_banking": {"purpose": "budgeting", "expiresAt": expires}}}
    response = await client.put("/v1/me/consent", json=body, headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == ["body.scopes.open_banking.expiresAt"]
