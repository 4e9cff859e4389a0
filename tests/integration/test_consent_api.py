"""Consent through the API: a grant projected and announced, an over-long grant refused, a revocation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from badges.config import Settings
from tests.support import collect, dev_token, eventually, free_port, running_api, sse_events

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


async def test_demographics_need_consent_are_sealed_and_go_with_it(
    client: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    headers = await dev_token(client, f"{uuid.uuid4()}@example.com")
    user_id = (await client.get("/v1/me", headers=headers)).json()["userId"]
    demographics = {"postcode": "sw1a", "ageRange": "25-34", "dependants": 2, "salaryBracket": "30-45k"}

    refused = await client.put("/v1/me/profile", json={"demographics": demographics}, headers=headers)
    assert refused.status_code == 403 and refused.json()["type"].endswith("consent-required")

    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body = {"scopes": {"demographics": {"purpose": "peer groups", "expiresAt": expires}}}
    assert (await client.put("/v1/me/consent", json=body, headers=headers)).status_code == 202

    async def consented() -> bool:
        scopes = (await client.get("/v1/me/consent", headers=headers)).json()["scopes"]
        return scopes.get("demographics", {}).get("status") == "active"

    await eventually(consented)
    stored = await client.put("/v1/me/profile", json={"demographics": demographics}, headers=headers)
    assert stored.status_code == 200, stored.text
    assert stored.json()["demographics"] == {**demographics, "postcode": "SW1A"}
    assert stored.json()["timezone"] == "UTC"  # left as it was
    async with pool.connection() as connection:
        row = await (await connection.execute("SELECT demographics FROM members WHERE id = %s", (user_id,))).fetchone()
    assert row is not None and row[0] is not None
    assert b"SW1A" not in bytes(row[0]) and b"30-45k" not in bytes(row[0])  # sealed with the member's key

    revoked = await client.put("/v1/me/consent", json={"scopes": {"demographics": None}}, headers=headers)
    assert revoked.status_code == 202

    async def gone() -> bool:
        async with pool.connection() as connection:
            cursor = await connection.execute("SELECT demographics FROM members WHERE id = %s", (user_id,))
            row = await cursor.fetchone()
        return row is not None and row[0] is None

    await eventually(gone)
    assert (await client.get("/v1/me/profile", headers=headers)).json()["demographics"] is None
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT action, details->>'scope', details->>'rowsDeleted' FROM audit_log"
            " WHERE subject = %s AND action LIKE 'consent.%%' ORDER BY id",
            (user_id,),
        )
        assert await cursor.fetchall() == [
            ("consent.granted", "demographics", "0"),
            ("consent.revoked", "demographics", "1"),
        ]


async def test_a_grant_is_in_force_when_the_answer_comes_and_an_expiry_needs_a_zone(client: httpx.AsyncClient) -> None:
    headers = await dev_token(client, f"{uuid.uuid4()}@example.com")
    naive = {"scopes": {"open_banking": {"purpose": "budgeting", "expiresAt": "2027-01-31T00:00:00"}}}
    refused = await client.put("/v1/me/consent", json=naive, headers=headers)
    assert refused.status_code == 422
    assert [error["field"] for error in refused.json()["errors"]] == ["body.scopes.open_banking.expiresAt"]

    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body = {"scopes": {"open_banking": {"purpose": "budgeting", "expiresAt": expires}}}
    assert (await client.put("/v1/me/consent", json=body, headers=headers)).status_code == 202
    # No waiting: the very next request may rely on it.
    assert (await client.post("/v1/me/bank/link-token", json={"provider": "plaid"}, headers=headers)).status_code == 200


async def test_a_full_postcode_is_refused_with_a_reason(client: httpx.AsyncClient) -> None:
    headers = await dev_token(client, f"{uuid.uuid4()}@example.com")
    response = await client.put("/v1/me/profile", json={"demographics": {"postcode": "SW1A 1AA"}}, headers=headers)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "body.demographics.postcode" and "district only" in error["message"]


async def test_a_change_while_temporal_is_down_is_refused_with_503(
    system_settings: Settings, client: httpx.AsyncClient
) -> None:
    headers = await dev_token(client, f"{uuid.uuid4()}@example.com")
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body = {"scopes": {"demographics": {"purpose": "peer groups", "expiresAt": expires}}}
    broken = system_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with running_api(broken) as url, httpx.AsyncClient(base_url=url, timeout=30) as down:
        refused = await down.put("/v1/me/consent", json=body, headers=headers)
    assert refused.status_code == 503
    assert refused.json()["type"] == "urn:badges:problem:temporal-unavailable"
