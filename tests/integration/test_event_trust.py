"""Trust per source: attendance and votes are facts the event system attests by signing them; a
member's own token reports only what happens in the member's own app. Back-dated bursts are
screened whichever source sends them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.test_ws import event_message, open_socket
from tests.support import EventSystem, dev_token, eventually, real_time_event

pytestmark = pytest.mark.usefixtures("worker")


async def my_badge(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str) -> dict[str, Any]:
    badges = (await client.get("/v1/me/badges", headers=headers)).json()["badges"]
    return next(badge for badge in badges if badge["badgeId"] == badge_id)


async def test_a_member_may_not_report_attendance_or_votes_with_their_own_token(
    api_url: str, client: httpx.AsyncClient, event_system: EventSystem
) -> None:
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    for type_ in ("attendance", "voting"):
        refused = await client.post("/v1/events", json=real_time_event(f"own-{type_}", sub, type_), headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"] == "urn:badges:problem:needs-attestation"
        assert type_ in refused.json()["detail"] and "tool_usage" in refused.json()["detail"]
    async with open_socket(api_url, headers=headers) as socket:
        frame = await socket.request(event_message("own-ws", sub, "attendance"), "error")
        assert frame["code"] == "needs-attestation" and frame["id"] == "own-ws"
        # Calculator use is the member's own to report.
        assert (await socket.request(event_message("calc-1", sub), "ack"))["status"] == "accepted"
    # Refused, not recorded: the event system may still send the same event.
    attested = await event_system.post(real_time_event("own-attendance", sub, "attendance"))
    assert attested.status_code == 202 and attested.json()["status"] == "accepted"

    async def counted() -> bool:
        return (await my_badge(client, headers, "regular-attendee"))["progress"] == 1

    await eventually(counted)


async def test_a_week_of_back_dated_check_ins_sent_at_once_earns_no_streak(
    client: httpx.AsyncClient, event_system: EventSystem
) -> None:
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    now = datetime.now(UTC)
    for days_ago in range(6, -1, -1):  # one a day over the last seven days, all sent now
        event = {
            **real_time_event(f"day-{days_ago}", sub, "attendance"),
            "timestamp": (now - timedelta(days=days_ago, minutes=1)).isoformat(),
        }
        response = await event_system.post(event)
        assert response.status_code == 202, response.text
    admin = await dev_token(client, f"admin-{uuid.uuid4()}", ["admin"])
    me = (await client.get("/v1/me", headers=headers)).json()["userId"]

    async def held() -> list[dict[str, Any]]:
        queue: list[dict[str, Any]] = (await client.get(f"/v1/admin/review-queue?user={me}", headers=admin)).json()
        assert {item["userId"] for item in queue} <= {me}  # the member's items only
        return queue

    async def four_held() -> bool:  # the first two back-dated ones pass, and today's is not back-dated
        return sum(item["eventCount"] for item in await held()) == 4

    await eventually(four_held)
    [item] = await held()
    assert "stamped over 1 h before arrival" in item["reason"]
    await asyncio.sleep(0.5)
    weekly = await my_badge(client, headers, "weekly-regular")
    assert not weekly["awarded"] and weekly["progress"] < 7


async def test_a_members_own_back_dated_report_counts_on_the_day_it_arrived(
    client: httpx.AsyncClient, event_system: EventSystem
) -> None:
    campaign = uuid.uuid4().hex
    badge_id = f"calc-streak-{campaign[:12]}"
    admin = await dev_token(client, f"admin-{uuid.uuid4()}", ["admin"])
    spec = {
        "name": "Two days of sums",
        "rule": {"kind": "streak", "eventType": "tool_usage", "length": 2, "eventDataMatch": {"campaign": campaign}},
    }
    assert (await client.put(f"/v1/admin/badges/{badge_id}", json=spec, headers=admin)).status_code == 201
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()

    async def streak_of(post: Any) -> dict[str, Any]:
        sub = f"m-{uuid.uuid4()}"
        headers = await dev_token(client, sub)
        for n, stamp in enumerate((yesterday, datetime.now(UTC).isoformat())):
            event = {**real_time_event(f"c{n}", sub, campaign=campaign), "timestamp": stamp}
            assert (await post(event, headers)).status_code == 202

        async def both_counted() -> bool:
            badges = (await client.get("/v1/me/badges", headers=headers)).json()["badges"]
            return any(b["badgeId"] == badge_id and (b["progress"] >= 1) for b in badges)

        await eventually(both_counted)
        await asyncio.sleep(0.5)
        return await my_badge(client, headers, badge_id)

    own = await streak_of(lambda event, headers: client.post("/v1/events", json=event, headers=headers))
    assert (own["progress"], own["awarded"]) == (1, False)  # both count today: no two-day streak
    signed = await streak_of(lambda event, headers: event_system.post(event))
    assert (signed["progress"], signed["awarded"]) == (2, True)  # the event system may back-fill
