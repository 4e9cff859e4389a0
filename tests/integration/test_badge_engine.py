"""The badge engine through the API: definitions as data with versions, re-evaluation, rewards
and budgets, bursts held for review, time zones, and the checks at the door.

Each test defines its own badges, matched on an `eventData.campaign` of its own, so the
catalogue other tests see is unaffected by what these events do.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from badges.config import Settings
from badges.domain.identity import user_badges_workflow_id
from badges.messages.schedules import RELEASE_SCHEDULE_ID
from badges.temporal import ensure_schedules
from badges.workflows.user_badges import UserBadgesWorkflow
from tests.support import EventSystem, dev_token, eventually, real_time_event, running_api

pytestmark = pytest.mark.usefixtures("worker")


async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    return await dev_token(client, f"admin-{uuid.uuid4()}", ["admin"])


def count_badge(campaign: str, target: int, event_type: str = "attendance", **extra: Any) -> dict[str, Any]:
    return {
        "name": f"Campaign {campaign[:8]}",
        "description": "Test badge.",
        "rule": {"kind": "count", "eventType": event_type, "target": target, "eventDataMatch": {"campaign": campaign}},
        **extra,
    }


async def my_badge(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str) -> dict[str, Any]:
    response = await client.get("/v1/me/badges", headers=headers)
    response.raise_for_status()
    return next(b for b in response.json()["badges"] if b["badgeId"] == badge_id)


async def send(
    client: httpx.AsyncClient, headers: dict[str, str], sub: str, campaign: str, count: int, type_: str = "attendance"
) -> None:
    """`count` events of `type_` for the campaign: attendance and votes signed by the event system,
    calculator use from the member's own token."""
    system = await EventSystem.register(client) if type_ != "tool_usage" else None
    for n in range(count):
        event = real_time_event(f"{campaign[:8]}-{uuid.uuid4().hex[:8]}-{n}", sub, type_, campaign=campaign)
        if system is None:
            response = await client.post("/v1/events", json=event, headers=headers)
        else:
            response = await system.post(event)
        assert response.status_code == 202, response.text


async def test_invalid_definitions_are_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    headers = await admin(client)
    campaign = uuid.uuid4().hex
    cases = [
        (count_badge(campaign, 0), "body.rule.count.target"),
        ({**count_badge(campaign, 3), "colour": "red"}, "body.colour"),
        (
            {
                "name": "Tiers",
                "rule": {"kind": "tiers", "eventType": "voting", "tiers": [{"name": "gold", "target": 5},
                                                                          {"name": "bronze", "target": 1}]},
            },
            "body.rule.tiers.tiers",  # the rule's kind, then its field (as in body.rule.streak.length)
        ),
        # A check across fields is reported at the part that is missing, not at the whole body.
        ({"name": "Better", "rule": {"kind": "improvement", "category": "gambling"}}, "body.config.openBanking"),
        (
            {"name": "Better", "rule": {"kind": "improvement", "category": "gambling"}, "config": {"openBanking": {}}},
            "body.config.behaviorTracking",
        ),
    ]  # fmt: skip
    for body, field in cases:
        response = await client.put(f"/v1/admin/badges/bad-{campaign[:8]}", json=body, headers=headers)
        assert response.status_code == 422, body
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [error["field"] for error in problem["errors"]], problem
    # The check's own message names the missing configuration (not pydantic's "Value error, ...").
    assert problem["errors"][0]["message"] == "an improvement badge needs config.behaviorTracking", problem
    # Nothing was saved.
    versions = await client.get(f"/v1/admin/badges/bad-{campaign[:8]}/versions", headers=headers)
    assert versions.status_code == 404


async def test_only_admins_define_badges(client: httpx.AsyncClient) -> None:
    body = count_badge(uuid.uuid4().hex, 3)
    for scopes in (["user"], ["operator"]):
        headers = await dev_token(client, f"s-{uuid.uuid4()}", scopes)
        response = await client.put("/v1/admin/badges/not-mine", json=body, headers=headers)
        assert response.status_code == 403


async def test_a_new_version_applies_to_new_progress_and_reevaluation_awards_what_it_now_allows(
    client: httpx.AsyncClient,
) -> None:
    admin_headers = await admin(client)
    campaign = uuid.uuid4().hex
    badge_id = f"camp-{campaign[:12]}"
    first = await client.put(f"/v1/admin/badges/{badge_id}", json=count_badge(campaign, 3), headers=admin_headers)
    assert first.status_code == 201 and first.json()["version"] == 1
    repeated = await client.put(f"/v1/admin/badges/{badge_id}", json=count_badge(campaign, 3), headers=admin_headers)
    assert repeated.status_code == 200 and repeated.json()["created"] is False

    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    await send(client, headers, sub, campaign, 2)

    async def progress_is(value: int) -> bool:
        badge = await my_badge(client, headers, badge_id)
        return badge["progress"] == value

    await eventually(lambda: progress_is(2))
    assert (await my_badge(client, headers, badge_id))["awarded"] is False

    # Version 2 asks for 2: the member already has 2, but only new progress or an explicit
    # re-evaluation applies it.
    second = await client.put(f"/v1/admin/badges/{badge_id}", json=count_badge(campaign, 2), headers=admin_headers)
    assert second.status_code == 201 and second.json()["version"] == 2
    await asyncio.sleep(1.5)  # past the API's catalogue cache
    assert (await my_badge(client, headers, badge_id))["awarded"] is False

    run = await client.post(f"/v1/admin/badges/{badge_id}/reevaluate", headers=admin_headers)
    assert run.status_code == 202, run.text
    assert run.json()["workflowId"] == f"catalogue/reevaluate/{badge_id}/v2"

    async def awarded() -> bool:
        return bool((await my_badge(client, headers, badge_id))["awarded"])

    await eventually(awarded)
    badge = await my_badge(client, headers, badge_id)
    assert [(a["instance"], a["version"]) for a in badge["awards"]] == [("1", 2)]

    # Asking again is the same run, and nothing is awarded twice.
    async def finished() -> bool:
        view = await client.get(f"/v1/admin/badges/{badge_id}/reevaluations/2", headers=admin_headers)
        return bool(view.json()["done"])

    await eventually(finished)
    again = await client.post(f"/v1/admin/badges/{badge_id}/reevaluate", headers=admin_headers)
    assert again.json()["workflowId"] == run.json()["workflowId"] and again.json()["membersSignalled"] == 1
    await send(client, headers, sub, campaign, 1)
    await eventually(lambda: progress_is(2))  # a fully awarded badge stops counting
    assert len((await my_badge(client, headers, badge_id))["awards"]) == 1

    versions = (await client.get(f"/v1/admin/badges/{badge_id}/versions", headers=admin_headers)).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["definition"]["rule"]["target"] == 3


async def test_awards_carry_rewards_within_budgets_deferred_or_withheld_never_dropped(
    client: httpx.AsyncClient,
) -> None:
    admin_headers = await admin(client)
    campaign = uuid.uuid4().hex
    deferred_badge, withheld_badge = f"pts-{campaign[:12]}", f"gbp-{campaign[:12]}"
    points = {"kind": "points", "points": 10}
    money = {"kind": "money", "amountMinor": 500, "currency": "GBP"}
    for badge_id, reward in ((deferred_badge, points), (withheld_badge, money)):
        body = count_badge(campaign, 1, reward=reward)
        assert (await client.put(f"/v1/admin/badges/{badge_id}", json=body, headers=admin_headers)).status_code == 201
    budgets = [
        (deferred_badge, {"kind": "points", "monthlyLimit": 15, "policy": "defer"}),
        (withheld_badge, {"kind": "money", "currency": "GBP", "monthlyLimit": 500, "policy": "withhold"}),
    ]
    for scope, budget in budgets:
        response = await client.put(f"/v1/admin/reward-budgets/{scope}", json=budget, headers=admin_headers)
        assert response.status_code == 200, response.text
    bad = await client.put(
        f"/v1/admin/reward-budgets/{deferred_badge}", json={"kind": "money", "monthlyLimit": 1, "policy": "defer"},
        headers=admin_headers,
    )  # fmt: skip
    assert bad.status_code == 422  # money needs a currency

    members = []
    for _ in range(2):
        sub = f"m-{uuid.uuid4()}"
        headers = await dev_token(client, sub)
        await send(client, headers, sub, campaign, 1)
        members.append(headers)

        async def two_rewards(headers: dict[str, str] = headers) -> bool:
            return len((await client.get("/v1/me/rewards", headers=headers)).json()["rewards"]) == 2

        await eventually(two_rewards)  # one member at a time: the first is charged first

    first = (await client.get("/v1/me/rewards", headers=members[0])).json()
    second = (await client.get("/v1/me/rewards", headers=members[1])).json()
    status = {
        m: {r["badgeId"]: r["status"] for r in rewards["rewards"]} for m, rewards in (("a", first), ("b", second))
    }
    assert status == {
        "a": {deferred_badge: "granted", withheld_badge: "granted"},
        "b": {deferred_badge: "deferred", withheld_badge: "withheld"},
    }
    assert first["pointsGranted"] == 10 and first["moneyGrantedMinor"] == {"GBP": 500}
    assert second["pointsGranted"] == 0 and second["pending"] == 1
    reason = next(r["reason"] for r in second["rewards"] if r["badgeId"] == deferred_badge)
    assert "exhausted" in reason and "10 of 15" in reason
    # Both members hold both badges: the budget limits the reward, never the award.
    for headers in members:
        assert (await my_badge(client, headers, deferred_badge))["awarded"] is True

    metrics = (await client.get("/v1/admin/metrics", headers=admin_headers)).json()
    budget = next(b for b in metrics["rewardBudgets"] if b["scope"] == deferred_badge)
    assert (budget["used"], budget["remaining"]) == (10, 5)
    assert metrics["rewardsByStatus"]["deferred"] >= 1 and metrics["rewardsByStatus"]["withheld"] >= 1

    # More budget: the deferred reward is granted on release, once.
    raised = {"kind": "points", "monthlyLimit": 20, "policy": "defer"}
    await client.put(f"/v1/admin/reward-budgets/{deferred_badge}", json=raised, headers=admin_headers)
    released = await client.post("/v1/admin/rewards/release-deferred", headers=admin_headers)
    assert released.status_code == 200 and released.json()["granted"] >= 1
    second = (await client.get("/v1/me/rewards", headers=members[1])).json()
    assert second["pointsGranted"] == 10 and second["pending"] == 0
    await client.post("/v1/admin/rewards/release-deferred", headers=admin_headers)
    assert (await client.get("/v1/me/rewards", headers=members[1])).json()["pointsGranted"] == 10


async def test_an_implausible_burst_is_held_for_review_and_counts_once_approved(
    client: httpx.AsyncClient, dev_server: WorkflowEnvironment
) -> None:
    admin_headers = await admin(client)
    campaign = uuid.uuid4().hex
    badge_id = f"burst-{campaign[:12]}"
    await client.put(f"/v1/admin/badges/{badge_id}", json=count_badge(campaign, 14), headers=admin_headers)
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    await send(client, headers, sub, campaign, 15)  # attendance: at most 10 a minute are plausible

    async def held() -> list[dict[str, Any]]:
        me = (await client.get("/v1/me", headers=headers)).json()["userId"]
        queue = (await client.get(f"/v1/admin/review-queue?user={me}", headers=admin_headers)).json()
        return [item for item in queue if item["userId"] == me]

    async def one_held() -> bool:
        return sum(item["eventCount"] for item in await held()) == 5

    await eventually(one_held)
    assert (await my_badge(client, headers, badge_id))["progress"] == 10
    [item] = await held()
    assert "attendance" in item["reason"] and item["status"] == "pending"
    # The member's workflow holds a count, not the events: those wait with the review item.
    me = (await client.get("/v1/me", headers=headers)).json()["userId"]
    snapshot = await dev_server.client.get_workflow_handle(user_badges_workflow_id(me)).query(
        UserBadgesWorkflow.snapshot
    )
    assert [(h.review_id, h.count, h.events) for h in snapshot.state.held] == [(item["reviewId"], 5, [])]

    member_headers = headers
    refused = await client.post(
        f"/v1/admin/review-queue/{item['reviewId']}/decision", json={"approve": True}, headers=member_headers
    )
    assert refused.status_code == 403
    decided = await client.post(
        f"/v1/admin/review-queue/{item['reviewId']}/decision", json={"approve": True}, headers=admin_headers
    )
    assert decided.status_code == 202

    async def awarded() -> bool:
        badge = await my_badge(client, headers, badge_id)
        return badge["progress"] == 14 and badge["awarded"] is True

    await eventually(awarded)
    resolved = (await client.get("/v1/admin/review-queue?status=approved", headers=admin_headers)).json()
    assert item["reviewId"] in [r["reviewId"] for r in resolved]
    again = await client.post(
        f"/v1/admin/review-queue/{item['reviewId']}/decision", json={"approve": True}, headers=admin_headers
    )
    assert again.status_code == 409


async def test_streak_days_are_the_members_local_days(client: httpx.AsyncClient, event_system: EventSystem) -> None:
    admin_headers = await admin(client)
    campaign = uuid.uuid4().hex
    badge_id = f"streak-{campaign[:12]}"
    spec = {
        "name": "Two days running",
        "rule": {"kind": "streak", "eventType": "tool_usage", "length": 2, "eventDataMatch": {"campaign": campaign}},
    }
    assert (await client.put(f"/v1/admin/badges/{badge_id}", json=spec, headers=admin_headers)).status_code == 201
    # 10:30 and 12:30 UTC yesterday: one UTC day, but two days in Auckland (UTC+12 or +13),
    # whose midnight falls between them.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    moments = [datetime(yesterday.year, yesterday.month, yesterday.day, hour, 30, tzinfo=UTC) for hour in (10, 12)]

    async def run(zone: str) -> dict[str, Any]:
        sub = f"m-{uuid.uuid4()}"
        headers = await dev_token(client, sub)
        profile = await client.put("/v1/me/profile", json={"timezone": zone}, headers=headers)
        assert profile.status_code == 200
        for n, moment in enumerate(moments):
            event = {**real_time_event(f"s{n}", sub, "tool_usage", campaign=campaign), "timestamp": moment.isoformat()}
            # Yesterday's events: only a signed source may back-date (a member's own count today).
            assert (await event_system.post(event)).status_code == 202

        async def counted() -> bool:
            return (await my_badge(client, headers, badge_id))["progress"] >= 1

        await eventually(counted)
        await asyncio.sleep(0.5)
        return await my_badge(client, headers, badge_id)

    auckland, utc = await run("Pacific/Auckland"), await run("UTC")
    assert (auckland["progress"], auckland["awarded"]) == (2, True)
    assert (utc["progress"], utc["awarded"]) == (1, False)

    headers = await dev_token(client, f"m-{uuid.uuid4()}")
    bad = await client.put("/v1/me/profile", json={"timezone": "Mars/Olympus_Mons"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.timezone"


async def test_events_too_far_ahead_or_behind_are_refused(client: httpx.AsyncClient) -> None:
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    now = datetime.now(UTC)
    for moment, slug in (
        (now + timedelta(minutes=10), "event-from-the-future"),
        (now - timedelta(days=8), "event-too-old"),
    ):
        event = {**real_time_event(f"t-{slug}", sub), "timestamp": moment.isoformat()}
        response = await client.post("/v1/events", json=event, headers=headers)
        assert response.status_code == 422
        assert response.json()["type"] == f"urn:badges:problem:{slug}"
    # Refused events were not recorded: the same ids with a good timestamp are accepted.
    response = await client.post("/v1/events", json=real_time_event("t-event-too-old", sub), headers=headers)
    assert response.status_code == 202


async def test_a_member_over_the_rate_limit_gets_429_with_retry_after(system_settings: Settings) -> None:
    settings = system_settings.model_copy(update={"member_event_rate": "3/minute"})
    async with running_api(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        sub, other = f"m-{uuid.uuid4()}", f"m-{uuid.uuid4()}"
        headers, other_headers = await dev_token(client, sub), await dev_token(client, other)
        # The limiter's windows start on the clock's minutes, and a burst that crosses into the
        # next one may get one more event through (the sliding window is an estimate there).
        if time.time() % 60 > 45:
            await asyncio.sleep(61 - time.time() % 60)
        statuses = [
            (await client.post("/v1/events", json=real_time_event(f"r{n}", sub), headers=headers)).status_code
            for n in range(5)
        ]
        assert statuses == [202, 202, 202, 429, 429]
        limited = await client.post("/v1/events", json=real_time_event("r9", sub), headers=headers)
        assert limited.json()["type"] == "urn:badges:problem:rate-limited"
        # When one more event fits: the full minute's count slides out of view within two minutes.
        assert 1 <= int(limited.headers["Retry-After"]) <= 120
        assert limited.json()["retryAfter"] == int(limited.headers["Retry-After"])
        # Another member is unaffected.
        response = await client.post("/v1/events", json=real_time_event("r0", other), headers=other_headers)
        assert response.status_code == 202


async def test_a_rejected_burst_never_counts(client: httpx.AsyncClient) -> None:
    admin_headers = await admin(client)
    campaign = uuid.uuid4().hex
    badge_id = f"reject-{campaign[:12]}"
    await client.put(f"/v1/admin/badges/{badge_id}", json=count_badge(campaign, 20), headers=admin_headers)
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    await send(client, headers, sub, campaign, 13)
    me = (await client.get("/v1/me", headers=headers)).json()["userId"]

    async def held() -> list[dict[str, Any]]:
        queue = (await client.get(f"/v1/admin/review-queue?user={me}", headers=admin_headers)).json()
        return [item for item in queue if item["userId"] == me]

    async def three_held() -> bool:
        return sum(item["eventCount"] for item in await held()) == 3

    await eventually(three_held)
    [item] = await held()
    decided = await client.post(
        f"/v1/admin/review-queue/{item['reviewId']}/decision", json={"approve": False}, headers=admin_headers
    )
    assert decided.status_code == 202

    async def rejected() -> bool:
        queue = (await client.get("/v1/admin/review-queue?status=rejected", headers=admin_headers)).json()
        return item["reviewId"] in [r["reviewId"] for r in queue]

    await eventually(rejected)
    assert (await my_badge(client, headers, badge_id))["progress"] == 10


async def test_an_admin_can_issue_a_new_webhook_secret_for_a_badge(client: httpx.AsyncClient) -> None:
    admin_headers = await admin(client)
    campaign = uuid.uuid4().hex
    badge_id = f"hook-{campaign[:12]}"
    spec = count_badge(
        campaign, 1, config={"webSocket": {"eventTypes": ["attendance"], "webhookUrl": "https://example.org/h"}}
    )
    created = await client.put(f"/v1/admin/badges/{badge_id}", json=spec, headers=admin_headers)
    first = created.json()["webhookSecret"]
    rotated = await client.post(f"/v1/admin/badges/{badge_id}/webhook-secret", headers=admin_headers)
    assert rotated.status_code == 201 and rotated.json()["webhookSecret"] not in ("", first)
    unknown = await client.post(f"/v1/admin/badges/no-such-{campaign[:8]}/webhook-secret", headers=admin_headers)
    assert unknown.status_code == 404
    operator = await dev_token(client, f"op-{uuid.uuid4()}", ["operator"])
    assert (await client.post(f"/v1/admin/badges/{badge_id}/webhook-secret", headers=operator)).status_code == 403


async def test_a_schedule_releases_deferred_rewards_without_anyone_asking(
    client: httpx.AsyncClient, dev_server: WorkflowEnvironment, system_settings: Settings
) -> None:
    admin_headers = await admin(client)
    campaign = uuid.uuid4().hex
    badge_id = f"sched-{campaign[:12]}"
    body = count_badge(campaign, 1, reward={"kind": "points", "points": 7})
    await client.put(f"/v1/admin/badges/{badge_id}", json=body, headers=admin_headers)
    closed = {"kind": "points", "monthlyLimit": 0, "policy": "defer"}
    await client.put(f"/v1/admin/reward-budgets/{badge_id}", json=closed, headers=admin_headers)
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    await send(client, headers, sub, campaign, 1)

    async def reward_status(expected: str) -> bool:
        rewards = (await client.get("/v1/me/rewards", headers=headers)).json()["rewards"]
        return [r["status"] for r in rewards if r["badgeId"] == badge_id] == [expected]

    await eventually(lambda: reward_status("deferred"))
    opened = {"kind": "points", "monthlyLimit": 100, "policy": "defer"}
    await client.put(f"/v1/admin/reward-budgets/{badge_id}", json=opened, headers=admin_headers)

    await ensure_schedules(dev_server.client, system_settings)
    await ensure_schedules(dev_server.client, system_settings)  # a second worker start keeps the one schedule
    schedule = dev_server.client.get_schedule_handle(RELEASE_SCHEDULE_ID)
    assert (await schedule.describe()).id == RELEASE_SCHEDULE_ID
    await schedule.trigger()
    await eventually(lambda: reward_status("granted"))
