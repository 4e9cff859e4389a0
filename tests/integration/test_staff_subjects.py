"""A staff token's `sub` names that person in the audit log and on every decision they make, so it
is bounded (128 characters, what every column that stores it holds): a longer one is refused at the
door, and can never stall the member's workflow that applies a review decision."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from badges.api.auth import MAX_STAFF_SUBJECT_LENGTH, issue_token
from badges.config import Settings
from tests.support import EventSystem, dev_token, eventually, real_time_event

pytestmark = pytest.mark.usefixtures("worker")


def count_badge(campaign: str, target: int, event_type: str) -> dict[str, Any]:
    return {
        "name": f"Campaign {campaign[:8]}",
        "description": "Test badge.",
        "rule": {"kind": "count", "eventType": event_type, "target": target, "eventDataMatch": {"campaign": campaign}},
    }


async def progress(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str) -> int:
    response = await client.get("/v1/me/badges", headers=headers)
    response.raise_for_status()
    return int(next(b for b in response.json()["badges"] if b["badgeId"] == badge_id)["progress"])


async def test_a_review_decided_by_a_long_staff_subject_never_stalls_the_member(
    client: httpx.AsyncClient, system_settings: Settings, pool: AsyncConnectionPool
) -> None:
    admin = await dev_token(client, f"admin-{uuid.uuid4()}", ["admin"])
    campaign = uuid.uuid4().hex
    held_badge, later_badge = f"held-{campaign[:12]}", f"later-{campaign[:12]}"
    await client.put(f"/v1/admin/badges/{held_badge}", json=count_badge(campaign, 14, "attendance"), headers=admin)
    await client.put(f"/v1/admin/badges/{later_badge}", json=count_badge(campaign, 5, "tool_usage"), headers=admin)
    sub = f"m-{uuid.uuid4()}"
    member = await dev_token(client, sub)
    scanner = await EventSystem.register(client, ["attendance"])
    for n in range(15):  # attendance: at most 10 a minute are plausible, so 5 are held
        event = real_time_event(f"{campaign[:8]}-a{n}", sub, "attendance", campaign=campaign)
        assert (await scanner.post(event)).status_code == 202
    me = (await client.get("/v1/me", headers=member)).json()["userId"]

    async def held() -> list[dict[str, Any]]:
        queue = (await client.get(f"/v1/admin/review-queue?user={me}", headers=admin)).json()
        return [item for item in queue if item["userId"] == me]

    async def five_held() -> bool:
        return sum(item["eventCount"] for item in await held()) == 5

    await eventually(five_held)
    [item] = await held()
    decision_path = f"/v1/admin/review-queue/{item['reviewId']}/decision"

    # Longer than a review's resolved_by holds, short enough for the audit log's actor (200).
    long_sub = "operator-" + "x" * 150
    long_staff = {"Authorization": f"Bearer {issue_token(system_settings, long_sub, ['operator'])}"}
    by_long_sub = await client.post(decision_path, json={"approve": True}, headers=long_staff)

    # Whatever became of that decision, the member's later events still count.
    event = real_time_event(f"{campaign[:8]}-t0", sub, "tool_usage", campaign=campaign)
    assert (await client.post("/v1/events", json=event, headers=member)).status_code == 202

    async def later_counted() -> bool:
        return await progress(client, member, later_badge) == 1

    await eventually(later_counted)
    assert by_long_sub.status_code == 401, by_long_sub.text
    assert by_long_sub.json()["type"] == "urn:badges:problem:invalid-token"
    assert str(MAX_STAFF_SUBJECT_LENGTH) in by_long_sub.json()["detail"]
    # Not even the dev route mints one.
    minted = await client.post("/v1/dev/token", json={"sub": long_sub, "scopes": ["operator"]})
    assert minted.status_code == 422 and minted.json()["errors"][0]["field"] == "body.sub"

    # The longest allowed subject decides, and is recorded as the audit log names that person.
    longest_sub = ("operator-" + "y" * 200)[:MAX_STAFF_SUBJECT_LENGTH]
    longest_staff = await dev_token(client, longest_sub, ["operator"])
    assert (await client.post(decision_path, json={"approve": True}, headers=longest_staff)).status_code == 202

    async def awarded() -> bool:
        return await progress(client, member, held_badge) == 14

    await eventually(awarded)
    approved = (await client.get("/v1/admin/review-queue?status=approved&limit=500", headers=admin)).json()
    assert [r["resolvedBy"] for r in approved if r["reviewId"] == item["reviewId"]] == [longest_sub]
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT count(*) FROM audit_log WHERE actor = %s AND resource = %s", (longest_sub, decision_path)
        )
        assert (await cursor.fetchone()) == (1,)


async def test_a_member_token_may_carry_a_long_subject(client: httpx.AsyncClient) -> None:
    # Members are named by a digest of their subject, never the subject itself: an event's
    # `userId` (the subject) may be up to 256 characters, and so may a member's token's `sub`.
    sub = "member-" + "z" * 249
    member = await dev_token(client, sub)
    assert (await client.get("/v1/me", headers=member)).status_code == 200
    event = real_time_event(f"long-{uuid.uuid4().hex[:8]}", sub)
    assert (await client.post("/v1/events", json=event, headers=member)).status_code == 202


async def test_a_staff_subject_too_long_for_the_audit_log_is_a_401_not_a_500(
    client: httpx.AsyncClient, system_settings: Settings
) -> None:
    token = issue_token(system_settings, "admin-" + "x" * 300, ["admin"])
    response = await client.get("/v1/admin/review-queue", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
