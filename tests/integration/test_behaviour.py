"""Bank data becomes insights and bank-data badges, end to end: sandbox personas linked through the
real API, synced by the real worker, evaluated by their BehaviourWorkflow; the dashboard, the
financial profile and the badges say what each history implies; revoking behaviour tracking stops
it and deletes what it derived."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.integration.test_open_banking import link, wait_status
from tests.sandbox.conftest import Sandbox
from tests.support import dev_token, eventually

pytestmark = pytest.mark.usefixtures("worker")
SCOPES = ("open_banking", "behaviour_tracking")


async def consent(client: httpx.AsyncClient, headers: dict[str, str], *scopes: str) -> None:
    expires = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    body = {"scopes": {scope: {"purpose": "my money", "expiresAt": expires} for scope in scopes}}
    assert (await client.put("/v1/me/consent", json=body, headers=headers)).status_code == 202

    async def granted() -> bool:
        held = (await client.get("/v1/me/consent", headers=headers)).json()["scopes"]
        return all(held.get(scope, {}).get("status") == "active" for scope in scopes)

    await eventually(granted)


async def evaluated_member(
    client: httpx.AsyncClient, sandbox: Sandbox, persona: str
) -> tuple[dict[str, str], dict[str, Any]]:
    headers = await dev_token(client, f"{persona}-{uuid.uuid4()}@example.com")
    await consent(client, headers, *SCOPES)
    linked = await link(client, headers, sandbox, persona)
    assert linked.status_code == 201, linked.text
    await wait_status(client, headers, "active")
    board: dict[str, Any] = {}

    async def ready() -> bool:
        nonlocal board
        response = await client.get("/v1/me/dashboard", headers=headers)
        assert response.status_code == 200, response.text
        board = response.json()
        # Consent alone starts an evaluation with no bank data yet; the sync's follows.
        return board["status"] == "ready" and any(month["complete"] for month in board["months"])

    await eventually(ready, timeout=60)
    return headers, board


async def badge(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str) -> dict[str, Any]:
    badges = (await client.get("/v1/me/badges", headers=headers)).json()["badges"]
    return next(b for b in badges if b["badgeId"] == badge_id)


async def test_the_saver_and_the_gambler_get_what_their_histories_imply(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool
) -> None:
    saver, saver_board = await evaluated_member(client, sandbox_bank, "user_saver")
    gambler, gambler_board = await evaluated_member(client, sandbox_bank, "user_gambler")

    # Figures month by month, a score with its band and components, income and its schedule.
    assert len(saver_board["months"]) >= 3 and saver_board["health"]["score"] is not None
    assert saver_board["health"]["score"] > gambler_board["health"]["score"]
    assert saver_board["income"]["regular"] is True and saver_board["income"]["frequency"] == "monthly"
    assert {c["indicator"] for c in saver_board["health"]["components"] if not c["observed"]} >= {"credit_score"}
    gambling = [m["spendingByCategory"].get("gambling", 0) for m in gambler_board["months"] if m["complete"]]
    # Most months (the persona bets most months; net of winnings, which come back in).
    assert gambling and sum(1 for total in gambling if total) >= len(gambling) // 2
    profile = (await client.get("/v1/me/financial-profile", headers=saver)).json()
    assert profile["salary"] > 0 and profile["savingsRate"] > 0.1 and profile["lastUpdated"]

    # Badges decided on the data, recorded by the member's badge workflow.
    async def decided() -> bool:
        saved = await badge(client, saver, "first-thousand")
        clean = await badge(client, gambler, "gambling-free-quarter")
        return saved["awarded"] and clean["progress"] < 90

    await eventually(decided, timeout=60)
    assert (await badge(client, saver, "tenth-saver"))["awarded"]

    # What the evaluations had to say came as insights on the stream, each once.
    for headers in (saver, gambler):
        member = (await client.get("/v1/me", headers=headers)).json()["userId"]
        async with pool.connection() as db:
            cursor = await db.execute(
                "SELECT payload FROM outbox WHERE user_id = %s AND kind = 'insight' AND payload ? 'key'", (member,)
            )
            said = [row[0] for row in await cursor.fetchall()]
        assert said and len({item["key"] for item in said}) == len(said)
        assert {item["type"] for item in said} <= {
            "badge-in-reach", "check-category", "trend", "unusual-spending", "data-quality", "goal-at-risk"
        }  # fmt: skip
    assert not (await badge(client, gambler, "gambling-free-quarter"))["awarded"]
    assert not (await badge(client, gambler, "tenth-saver"))["awarded"]


async def test_without_behaviour_tracking_nothing_is_evaluated_and_revoking_deletes_it(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool
) -> None:
    headers, _ = await evaluated_member(client, sandbox_bank, "user_good")
    user_id = (await client.get("/v1/me", headers=headers)).json()["userId"]
    revoked = await client.put("/v1/me/consent", json={"scopes": {"behaviour_tracking": None}}, headers=headers)
    assert revoked.status_code == 202

    async def gone() -> bool:
        async with pool.connection() as db:
            cursor = await db.execute("SELECT 1 FROM member_insights WHERE user_id = %s", (user_id,))
            return await cursor.fetchone() is None

    await eventually(gone)
    refused = await client.get("/v1/me/dashboard", headers=headers)
    assert refused.status_code == 403 and refused.json()["type"] == "urn:badges:problem:consent-required"

    # Open banking alone: the bank syncs, nothing is evaluated.
    only_bank = await dev_token(client, f"bank-only-{uuid.uuid4()}@example.com")
    await consent(client, only_bank, "open_banking")
    assert (await link(client, only_bank, sandbox_bank, "user_saver")).status_code == 201
    await wait_status(client, only_bank, "active")
    member = (await client.get("/v1/me", headers=only_bank)).json()["userId"]
    async with pool.connection() as db:
        cursor = await db.execute("SELECT 1 FROM member_insights WHERE user_id = %s", (member,))
        assert await cursor.fetchone() is None
