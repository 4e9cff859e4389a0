"""UserBadgesWorkflow on real Temporal servers with its real activity writing to real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer, Worker

from badges.activities.progress import ProgressActivities
from badges.db.keys import KeyStore
from badges.db.outbox import OutboxEntry
from badges.db.progress import AwardRow, BadgeProgress
from badges.domain.events import BadgeEvent
from badges.domain.identity import user_badges_workflow_id
from badges.domain.rules import BadgeState
from badges.messages.user_badges import UserBadgesInput
from badges.workers.main import sandbox_everything
from badges.workflows.user_badges import UserBadgesWorkflow
from tests.conftest import CONTINUE_AS_NEW_AFTER_EVENTS, create_member
from tests.support import eventually


def worker_for(client: Client, pool: AsyncConnectionPool, keys: KeyStore, task_queue: str) -> Worker:
    progress = ProgressActivities(pool, keys)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[UserBadgesWorkflow],
        activities=[
            progress.record_progress,
            progress.load_held_events,
            progress.record_dead_letter,
            progress.record_dropped_awards,
        ],
        **sandbox_everything(),
    )


def event(event_id: str, type_: str = "tool_usage") -> BadgeEvent:
    # Received as it happened (the API stamps `received_at`): not back-dated, however far the
    # time-skipping server's clock has run ahead of the real one.
    now = datetime.now(UTC)
    return BadgeEvent(id=event_id, type=type_, timestamp=now, received_at=now)  # type: ignore[arg-type]


async def send(client: Client, member: uuid.UUID, task_queue: str, *events: BadgeEvent) -> WorkflowHandle:
    handle = None
    for item in events:
        handle = await client.start_workflow(
            UserBadgesWorkflow.run,
            UserBadgesInput(user_id=member),
            id=user_badges_workflow_id(member),
            task_queue=task_queue,
            start_signal="record_event",
            start_signal_args=[item],
        )
    assert handle is not None
    return handle


async def progress_of(engine: AsyncEngine, member: uuid.UUID) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(BadgeProgress.badge_id, BadgeProgress.value).where(BadgeProgress.user_id == member)
        )
        return {badge_id: value for badge_id, value in rows}


async def outbox_of(engine: AsyncEngine, member: uuid.UUID) -> list[tuple[int, str, dict]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(OutboxEntry.id, OutboxEntry.kind, OutboxEntry.payload)
            .where(OutboxEntry.user_id == member)
            .order_by(OutboxEntry.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_events_become_progress_award_and_outbox_rows(time_skipping, engine, pool, keys: KeyStore) -> None:
    member = await create_member(engine, keys)
    task_queue = f"tq-{uuid.uuid4()}"
    async with worker_for(time_skipping.client, pool, keys, task_queue):
        handle = await send(time_skipping.client, member, task_queue, event("a"), event("b"), event("v", "voting"))
        await eventually(lambda: _has(engine, member, {"calculator-explorer": 2, "active-voter": 1}))
        await send(time_skipping.client, member, task_queue, event("c"))
        await eventually(lambda: _has(engine, member, {"calculator-explorer": 3, "active-voter": 1}))

        snapshot = await handle.query(UserBadgesWorkflow.snapshot)
        assert counts_of(snapshot.state) == {"calculator-explorer": 3, "active-voter": 1}
        assert "1" in snapshot.state.badges["calculator-explorer"].awarded

    async with engine.connect() as connection:
        awards = (await connection.execute(select(AwardRow.badge_id).where(AwardRow.user_id == member))).scalars().all()
    assert awards == ["calculator-explorer"]
    outbox = await outbox_of(engine, member)
    assert [kind for _, kind, _ in outbox].count("award") == 1
    assert outbox[-1][2]["badgeId"] == "calculator-explorer"
    assert [row_id for row_id, _, _ in outbox] == sorted(row_id for row_id, _, _ in outbox)


async def test_a_repeated_event_id_is_counted_once(time_skipping, engine, pool, keys: KeyStore) -> None:
    member = await create_member(engine, keys)
    task_queue = f"tq-{uuid.uuid4()}"
    async with worker_for(time_skipping.client, pool, keys, task_queue):
        handle = await send(time_skipping.client, member, task_queue, event("same"), event("same"), event("other"))
        await eventually(lambda: _has(engine, member, {"calculator-explorer": 2}))
        await send(time_skipping.client, member, task_queue, event("same"))
        await eventually(lambda: _snapshot_seen(handle, 2))
        assert counts_of((await handle.query(UserBadgesWorkflow.snapshot)).state) == {"calculator-explorer": 2}
    assert await progress_of(engine, member) == {"calculator-explorer": 2}


async def test_history_replays_deterministically(time_skipping, engine, pool, keys: KeyStore, data_converter) -> None:
    member = await create_member(engine, keys)
    task_queue = f"tq-{uuid.uuid4()}"
    async with worker_for(time_skipping.client, pool, keys, task_queue):
        handle = await send(
            time_skipping.client, member, task_queue, *[event(f"r{i}", t) for i, t in enumerate(["voting"] * 5)]
        )
        await eventually(lambda: _has(engine, member, {"active-voter": 5}))
        history = await handle.fetch_history()
    assert len(history.events) > 5
    await Replayer(
        workflows=[UserBadgesWorkflow], data_converter=data_converter, **sandbox_everything()
    ).replay_workflow(history)


async def test_continues_as_new_carrying_state_and_dedup_window(dev_server, engine, pool, keys: KeyStore) -> None:
    member = await create_member(engine, keys)
    task_queue = f"tq-{uuid.uuid4()}"
    client = dev_server.client
    async with worker_for(client, pool, keys, task_queue):
        first = await send(client, member, task_queue, event("first", "attendance"))
        first_run = (await first.describe()).run_id
        await eventually(lambda: _has(engine, member, {"regular-attendee": 1}))
        # One signal per workflow task, so the history grows past the suggestion threshold.
        for i in range(CONTINUE_AS_NEW_AFTER_EVENTS // 2):
            await send(client, member, task_queue, event(f"v{i}", "voting"))
            await asyncio.sleep(0.01)
        latest = client.get_workflow_handle(user_badges_workflow_id(member))
        await eventually(lambda: _run_changed(latest, first_run), timeout=30)
        # The first event again, after continue-as-new: still a duplicate.
        await send(client, member, task_queue, event("first", "attendance"), event("second", "attendance"))
        await eventually(lambda: _has(engine, member, {"regular-attendee": 2, "active-voter": 5}))
        snapshot = await latest.query(UserBadgesWorkflow.snapshot)
        first_history = await client.get_workflow_handle(first.id, run_id=first_run).fetch_history()
        latest_history = await latest.fetch_history()
    assert snapshot.state.badges["regular-attendee"].count == 2
    # The first run was started without saying it screens back-dated events, so it asked by patch;
    # the runs it continued as say so, and ask nothing (no marker, no search-attribute upsert).
    assert patch_markers(first_history) == 1 and patch_markers(latest_history) == 0
    assert "1" in snapshot.state.badges["active-voter"].awarded
    outbox = await outbox_of(engine, member)
    assert [payload["badgeId"] for _, kind, payload in outbox if kind == "award"] == ["active-voter"]


def patch_markers(history: WorkflowHistory) -> int:
    return sum(
        event.HasField("marker_recorded_event_attributes")
        and event.marker_recorded_event_attributes.marker_name == "core_patch"
        for event in history.events
    )


def counts_of(state: BadgeState) -> dict[str, int]:
    return {badge_id: progress.count for badge_id, progress in state.badges.items()}


async def _has(engine: AsyncEngine, member: uuid.UUID, expected: dict[str, int]) -> bool:
    return await progress_of(engine, member) == expected


async def _snapshot_seen(handle: WorkflowHandle, count: int) -> bool:
    snapshot = await handle.query(UserBadgesWorkflow.snapshot)
    return snapshot.pending == 0 and len(snapshot.state.recent_event_ids) == count


async def _run_changed(handle: WorkflowHandle, run_id: str | None) -> bool:
    return (await handle.describe()).run_id != run_id
