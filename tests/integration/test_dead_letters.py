"""Work a member's workflow cannot apply is set aside, not retried forever: through the real API,
worker, Temporal dev server and PostgreSQL. The bad event reaches the workflow past intake (a
signal straight to Temporal, as a forged or legacy one would) and PostgreSQL genuinely refuses it;
the member's later events still count, and operators see the dead letter, audited and counted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from badges.config import Settings
from badges.domain.events import BadgeEvent
from badges.domain.identity import user_badges_workflow_id
from badges.temporal import record_event
from badges.workflows.user_badges import UserBadgesWorkflow
from tests.support import EventSystem, dev_token, eventually, real_time_event

pytestmark = pytest.mark.usefixtures("worker")


async def progress(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str) -> int:
    badges = (await client.get("/v1/me/badges", headers=headers)).json()["badges"]
    return next((badge["progress"] for badge in badges if badge["badgeId"] == badge_id), 0)


async def test_a_held_event_postgresql_refuses_is_set_aside_and_the_member_goes_on(
    client: httpx.AsyncClient, dev_server: WorkflowEnvironment, system_settings: Settings, event_system: EventSystem
) -> None:
    operator = await dev_token(client, f"operator-{uuid.uuid4()}", ["operator"])
    compliance = await dev_token(client, f"compliance-{uuid.uuid4()}", ["compliance"])
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    member = uuid.UUID((await client.get("/v1/me", headers=headers)).json()["userId"])
    # Ten check-ins count (the plausible ten a minute: they reach Temporal, in order, before the
    # next one); the eleventh is held for review.
    for n in range(10):
        body = real_time_event(f"in-{n}-{uuid.uuid4().hex[:6]}", sub, "attendance")
        assert (await event_system.post(body)).status_code == 202  # check-ins come signed
    # Held, its id and data hold a NUL: intake refuses that (422), but this one comes straight to
    # Temporal. PostgreSQL text cannot hold a NUL (psycopg refuses it before sending, DataError),
    # so the review item cannot take it: before dead letters the write was retried forever and
    # the member's workflow never applied another event.
    now = datetime.now(UTC)
    bad = BadgeEvent(id="bad\x00id", type="attendance", event_data={"note": "a\x00b"}, timestamp=now, received_at=now)
    await record_event(dev_server.client, system_settings, member, bad)

    handle = dev_server.client.get_workflow_handle(user_badges_workflow_id(member))

    async def passed_over() -> bool:
        snapshot = await handle.query(UserBadgesWorkflow.snapshot)
        return "bad\x00id" in snapshot.state.recent_event_ids and snapshot.pending == 0

    # Set aside for good (remembered, never tried again); before, its batch was retried forever.
    await eventually(passed_over)
    # The member goes on: a calculator use sent after it counts.
    after = real_time_event(f"calc-{uuid.uuid4().hex[:6]}", sub)
    assert (await client.post("/v1/events", json=after, headers=headers)).status_code == 202
    await eventually(lambda: _reached(client, headers, "calculator-explorer", 1))

    async def listed() -> list[dict[str, Any]]:
        response = await client.get(f"/v1/admin/dead-letters?user={member}", headers=operator)
        assert response.status_code == 200, response.text
        return response.json()["deadLetters"]  # type: ignore[no-any-return]

    async def set_aside() -> bool:
        return bool(await listed())

    await eventually(set_aside)
    [letter] = await listed()
    assert letter["kind"] == "event" and letter["userId"] == str(member) and letter["reviewId"] is None
    assert letter["eventIds"] == ["bad\\x00id"]  # the NUL written as its escape
    assert letter["reason"].startswith("record_progress: "), letter
    assert "a\x00b" not in letter["reason"] and "note" not in letter["reason"]

    # Operators: counted in the metrics, paged, refused to members, every read audited.
    metrics = (await client.get("/v1/admin/metrics", headers=operator)).json()
    assert metrics["deadLetters"] >= 1
    first = (await client.get("/v1/admin/dead-letters?limit=1", headers=operator)).json()
    assert len(first["deadLetters"]) == 1 and first["nextAfterId"] == first["deadLetters"][0]["id"]
    assert (await client.get("/v1/admin/dead-letters", headers=headers)).status_code == 403
    # An id past any row's (bigint) is refused as input, not a database error (schemathesis found it).
    huge = await client.get(f"/v1/admin/dead-letters?afterId={2**63}", headers=operator)
    assert huge.status_code == 422, huge.text
    audit = (await client.get(f"/v1/admin/audit?subject={member}&action=admin.GET", headers=compliance)).json()
    assert any(record["resource"].startswith("/v1/admin/dead-letters") for record in audit["records"])


async def _reached(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str, value: int) -> bool:
    return await progress(client, headers, badge_id) >= value
