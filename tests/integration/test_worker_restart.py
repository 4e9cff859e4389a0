"""A worker killed in the middle of a burst of events: nothing lost, nothing counted twice."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import defaultdict

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from badges.config import Settings
from badges.db.outbox import OutboxEntry
from badges.domain.identity import user_badges_workflow_id
from badges.workflows.user_badges import UserBadgesWorkflow
from tests.processes import start_worker
from tests.support import EventSystem, dev_token, real_time_event, running_api

MEMBERS = 15
# Below every target, so each count is exact: a double count would show as 3 or 5.
PER_MEMBER = [("attendance", 2), ("voting", 4)]
# The count badges those events feed (others in the catalogue count them too, by other rules).


async def test_worker_killed_mid_burst_loses_and_repeats_nothing(
    system_settings: Settings, dev_server: WorkflowEnvironment, engine: AsyncEngine
) -> None:
    settings = system_settings.model_copy(update={"task_queue": f"tq-{uuid.uuid4()}"})
    worker = start_worker(settings)
    try:
        async with running_api(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            members = [f"burst-{uuid.uuid4()}" for _ in range(MEMBERS)]
            headers = {sub: await dev_token(client, sub) for sub in members}
            events = [
                (sub, real_time_event(f"{type_}-{n}", sub, type_))
                for n in range(max(count for _, count in PER_MEMBER))
                for sub in members
                for type_, count in PER_MEMBER
                if n < count
            ]
            half = len(events) // 2

            system = await EventSystem.register(client)  # attendance and votes come signed

            async def post(sub: str, body: dict) -> None:
                response = await system.post(body)
                assert response.status_code == 202, response.text

            await asyncio.gather(*(post(sub, body) for sub, body in events[:half]))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            await asyncio.gather(*(post(sub, body) for sub, body in events[half:]))
            worker = start_worker(settings)

            member_ids = {sub: (await client.get("/v1/me", headers=headers[sub])).json()["userId"] for sub in members}
            expected = {"regular-attendee": 2, "active-voter": 4}
            for _ in range(600):
                views = await asyncio.gather(*(client.get("/v1/me/badges", headers=headers[s]) for s in members))
                progress = [
                    {b["badgeId"]: b["progress"] for b in v.json()["badges"] if b["badgeId"] in expected} for v in views
                ]
                if all(p == expected for p in progress):
                    break
                await asyncio.sleep(0.1)
            assert all(p == expected for p in progress), progress
            for sub in members:
                member = uuid.UUID(member_ids[sub])
                handle = dev_server.client.get_workflow_handle(user_badges_workflow_id(member))
                snapshot = await handle.query(UserBadgesWorkflow.snapshot)
                assert sorted(snapshot.state.recent_event_ids) == sorted(body["id"] for s, body in events if s == sub)
                async with engine.connect() as connection:
                    rows = await connection.execute(
                        select(OutboxEntry.payload).where(OutboxEntry.user_id == member).order_by(OutboxEntry.id)
                    )
                    values: dict[str, list[int]] = defaultdict(list)
                    for (payload,) in rows:
                        values[payload["badgeId"]].append(payload["value"])
                for badge_id in expected:
                    seen = values[badge_id]
                    assert seen == sorted(set(seen)), f"{badge_id} progress repeated or went back: {seen}"
                    assert seen[-1] == expected[badge_id]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
