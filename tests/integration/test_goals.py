"""Goals end to end: the saver persona linked through the real API and evaluated by their
BehaviourWorkflow; goals set with `POST /v1/me/goals` are measured by the evaluation a new goal
asks for, shown with their progress (`GET /v1/me/goals`, the dashboard), reached goals earn
*Goal getter* once each, and goals need behaviour tracking, are the member's own, are validated,
capped and limited, and end with the consent."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from badges.config import Settings
from badges.domain.goals import MAX_GOALS
from tests.integration.test_behaviour import badge, consent, evaluated_member
from tests.sandbox.conftest import Sandbox
from tests.support import dev_token, eventually, running_api

pytestmark = pytest.mark.usefixtures("worker")
# As if set this long ago: the saver has saved after it (three paydays) and kept whole months since.
SET_BEFORE = timedelta(days=75)


async def set_goal(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/me/goals", json=body, headers=headers)
    assert response.status_code == 201, response.text
    goal: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/me/goals/{goal['id']}"
    return goal


async def goals(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/v1/me/goals", headers=headers)
    assert response.status_code == 200, response.text
    return {goal["id"]: goal for goal in response.json()["goals"]}


async def test_goals_are_measured_reached_once_and_shown_with_their_progress(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool
) -> None:
    saver, _ = await evaluated_member(client, sandbox_bank, "user_saver")
    holiday = await set_goal(
        client, saver, kind="save", name="Holiday", targetMinor=50_000, deadline=str(date.today() + timedelta(days=365))
    )
    food = await set_goal(client, saver, kind="limit", name="Groceries", category="groceries", limitMinor=10**8)
    assert holiday["progress"] is None and holiday["reachedAt"] is None  # measured by the evaluation it asked for
    assert (food["category"], food["limitMinor"]) == ("groceries", 10**8)
    # Savings count from the day a goal is set, and a limit goal needs a whole month since: these
    # two were set 75 days ago (the sandbox's history does not move on during a test).
    async with pool.connection() as db:
        await db.execute(
            "UPDATE member_goals SET created_at = created_at - %s WHERE id = ANY(%s)",
            (SET_BEFORE, [uuid.UUID(holiday["id"]), uuid.UUID(food["id"])]),
        )
    # Set today, far off: nothing the history holds counts towards it yet.
    house = await set_goal(client, saver, kind="save", name="House", targetMinor=10**7)

    async def measured() -> bool:
        mine = await goals(client, saver)
        return all(goal["progress"] is not None for goal in mine.values()) and mine[food["id"]]["reachedAt"] is not None

    await eventually(measured, timeout=60)
    mine = await goals(client, saver)
    reached = mine[holiday["id"]]
    assert reached["reachedAt"] and reached["name"] == "Holiday" and reached["targetMinor"] == 50_000
    progress = reached["progress"]
    assert progress["savedMinor"] >= 2 * 50_000 and progress["percent"] == 100 and not progress["atRisk"]
    assert progress["pacePerMonthMinor"] > 0
    far = mine[house["id"]]["progress"]
    assert far["savedMinor"] < progress["savedMinor"] and mine[house["id"]]["reachedAt"] is None
    assert date.fromisoformat(far["expectedCompletion"]) > date.today() + timedelta(days=365)  # years at the pace
    kept = mine[food["id"]]["progress"]
    assert kept["monthsKept"] >= 2 and kept["lastCompleteMonthKept"] is True and kept["lastCompleteMonthSpentMinor"] > 0
    assert kept["month"] == date.today().replace(day=1).isoformat() and kept["atRisk"] is False
    board = (await client.get("/v1/me/dashboard", headers=saver)).json()
    assert {goal["id"]: goal["reachedAt"] for goal in board["goals"]} == {
        goal_id: goal["reachedAt"] for goal_id, goal in mine.items()
    }

    # Goal getter: once for each goal reached, named by the goal's id.
    async def awarded() -> bool:
        return len((await badge(client, saver, "goal-getter"))["awards"]) == 2

    await eventually(awarded, timeout=30)
    evaluated_at = (await client.get("/v1/me/goals", headers=saver)).json()["evaluatedAt"]
    await set_goal(client, saver, kind="limit", name="No bets", category="gambling", limitMinor=1)

    async def evaluated_again() -> bool:
        return (await client.get("/v1/me/goals", headers=saver)).json()["evaluatedAt"] != evaluated_at

    await eventually(evaluated_again, timeout=30)
    getter = await badge(client, saver, "goal-getter")
    assert sorted(award["instance"] for award in getter["awards"]) == sorted([holiday["id"], food["id"]])

    # One goal at a time, and only the member's own.
    one = await client.get(f"/v1/me/goals/{food['id']}", headers=saver)
    assert one.status_code == 200 and one.json()["progress"]["monthsKept"] >= 2
    stranger = await dev_token(client, f"stranger-{uuid.uuid4()}@example.com")
    await consent(client, stranger, "behaviour_tracking")
    for method in ("GET", "DELETE"):
        refused = await client.request(method, f"/v1/me/goals/{food['id']}", headers=stranger)
        assert refused.status_code == 404 and refused.json()["type"] == "urn:badges:problem:goal-not-found"
    assert await goals(client, stranger) == {}

    # Deleted: gone from the list and the dashboard; what it earned stays earned.
    assert (await client.delete(f"/v1/me/goals/{holiday['id']}", headers=saver)).status_code == 204
    assert holiday["id"] not in await goals(client, saver)
    assert holiday["id"] not in {
        goal["id"] for goal in (await client.get("/v1/me/dashboard", headers=saver)).json()["goals"]
    }
    assert (await client.delete(f"/v1/me/goals/{holiday['id']}", headers=saver)).status_code == 404
    assert len((await badge(client, saver, "goal-getter"))["awards"]) == 2


async def test_goals_need_behaviour_tracking_and_valid_fields_and_end_with_the_consent(
    client: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    save = {"kind": "save", "name": "Rainy day", "targetMinor": 100_000}
    headers = await dev_token(client, f"goals-{uuid.uuid4()}@example.com")
    for response in (
        await client.post("/v1/me/goals", json=save, headers=headers),
        await client.get("/v1/me/goals", headers=headers),
    ):
        assert response.status_code == 403 and response.json()["type"] == "urn:badges:problem:consent-required"

    await consent(client, headers, "behaviour_tracking")
    yesterday = str(datetime.now(UTC).date() - timedelta(days=2))
    limit = {"kind": "limit", "name": "Takeaways", "category": "fast_food", "limitMinor": 5_000}
    wrong = [
        ({**save, "targetMinor": 0}, "body.save.targetMinor"),
        ({**save, "targetMinor": -100}, "body.save.targetMinor"),
        ({**save, "name": "   "}, "body.save.name"),
        ({**save, "deadline": yesterday}, "body.save.deadline"),
        ({**limit, "limitMinor": 0}, "body.limit.limitMinor"),
        ({**limit, "category": "savings"}, "body.limit.category"),
        ({**limit, "category": "takeaways"}, "body.limit.category"),
        ({"kind": "limit", "name": "x", "limitMinor": 5}, "body.limit.category"),
        ({**save, "kind": "spend"}, "body"),
    ]
    for body, field in wrong:
        response = await client.post("/v1/me/goals", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        problem = response.json()
        assert problem["type"] == "urn:badges:problem:validation-failed"
        assert [error["field"] for error in problem["errors"]] == [field], (body, problem)
    assert await goals(client, headers) == {}

    created = await set_goal(client, headers, **limit)
    assert created["kind"] == "limit" and created["category"] == "fast_food"
    user_id = (await client.get("/v1/me", headers=headers)).json()["userId"]
    async with pool.connection() as db:
        cursor = await db.execute("SELECT kind, sealed FROM member_goals WHERE user_id = %s", (user_id,))
        [(kind, sealed)] = await cursor.fetchall()
    assert kind == "limit" and b"Takeaways" not in bytes(sealed) and b"fast_food" not in bytes(sealed)

    # Ending behaviour tracking deletes the goals with what the evaluation derived.
    revoked = await client.put("/v1/me/consent", json={"scopes": {"behaviour_tracking": None}}, headers=headers)
    assert revoked.status_code == 202

    async def gone() -> bool:
        async with pool.connection() as db:
            cursor = await db.execute("SELECT 1 FROM member_goals WHERE user_id = %s", (user_id,))
            return await cursor.fetchone() is None

    await eventually(gone)
    refused = await client.delete(f"/v1/me/goals/{created['id']}", headers=headers)
    assert refused.status_code == 403


async def test_goals_are_capped_per_member_and_new_ones_limited(
    client: httpx.AsyncClient, system_settings: Settings
) -> None:
    headers = await dev_token(client, f"many-goals-{uuid.uuid4()}@example.com")
    await consent(client, headers, "behaviour_tracking")
    body = {"kind": "save", "name": "Jar", "targetMinor": 1_000}
    # The default limit on new goals (BADGES_GOAL_RATE, 10 a month) comes first.
    for _ in range(10):
        await set_goal(client, headers, **body)
    limited = await client.post("/v1/me/goals", json=body, headers=headers)
    assert limited.status_code == 429 and limited.headers["retry-after"], limited.text

    # With a laxer limit, the cap: at most 20 goals held at once.
    lax = system_settings.model_copy(update={"goal_rate": "100/minute"})
    async with running_api(lax) as url, httpx.AsyncClient(base_url=url, timeout=30) as other:
        for _ in range(MAX_GOALS - 10):
            assert (await other.post("/v1/me/goals", json=body, headers=headers)).status_code == 201
        full = await other.post("/v1/me/goals", json=body, headers=headers)
        assert full.status_code == 409, full.text
        assert full.json()["type"] == "urn:badges:problem:too-many-goals" and "delete one" in full.json()["detail"]
        held = await goals(other, headers)
        assert len(held) == MAX_GOALS
        # Deleting one makes room for another.
        assert (await other.delete(f"/v1/me/goals/{next(iter(held))}", headers=headers)).status_code == 204
        assert (await other.post("/v1/me/goals", json=body, headers=headers)).status_code == 201
