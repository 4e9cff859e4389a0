"""BankSyncWorkflow's logic on the time-skipping server, its activities stood in for: a provider
that keeps failing opens the circuit breaker (`degraded`), a webhook during the cool-down waits,
one success closes it; `login_required` waits for the member to re-link; no consent ends it;
`disconnect` revokes and deletes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from badges.domain.identity import bank_sync_workflow_id
from badges.messages.bank_sync import (
    CONSENT_MISSING,
    LOGIN_REQUIRED,
    PROVIDER_PAUSED,
    BankSyncInput,
    ConnectionRef,
    StatusChange,
    SyncOutcome,
)
from badges.messages.behaviour import DataChanged
from badges.workflows.bank_sync import DEGRADED_AFTER, BankSyncWorkflow
from tests.support import eventually

PAUSE_SECONDS = 600.0


class StandIns:
    """The workflow's activities. `sync_connection` answers with `outcome` (an `ApplicationError`
    type fails the sync with it; retries exhausted for a plain failure)."""

    def __init__(self) -> None:
        self.outcome = "ok"
        self.syncs = 0
        self.statuses: list[str] = []
        self.disconnected: list[uuid.UUID] = []
        self.behaviour_told = 0

    @activity.defn(name="sync_connection")
    async def sync_connection(self, ref: ConnectionRef) -> SyncOutcome:
        self.syncs += 1
        if self.outcome == "ok":
            return SyncOutcome(applied=True, added=3)
        if self.outcome == PROVIDER_PAUSED:  # the provider's breaker: no call made, wait 10 minutes
            raise ApplicationError("paused", PAUSE_SECONDS, type=PROVIDER_PAUSED, non_retryable=True)
        non_retryable = self.outcome in (LOGIN_REQUIRED, CONSENT_MISSING)
        raise ApplicationError("the provider says no", type=self.outcome, non_retryable=non_retryable)

    @activity.defn(name="record_status")
    async def record_status(self, change: StatusChange) -> None:
        self.statuses.append(change.status)

    @activity.defn(name="disconnect_connection")
    async def disconnect_connection(self, ref: ConnectionRef) -> None:
        self.disconnected.append(ref.connection_id)

    @activity.defn(name="behaviour_data_changed")
    async def behaviour_data_changed(self, user_id: uuid.UUID, change: DataChanged) -> bool:
        self.behaviour_told += 1
        return True


@asynccontextmanager
async def started(env: WorkflowEnvironment, stand_ins: StandIns) -> AsyncIterator[WorkflowHandle]:
    """A sync workflow for a new connection, with a worker; terminated if the test leaves it running."""
    task_queue = f"tq-{uuid.uuid4()}"
    connection = uuid.uuid4()
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[BankSyncWorkflow],
        activities=[
            stand_ins.sync_connection,
            stand_ins.record_status,
            stand_ins.disconnect_connection,
            stand_ins.behaviour_data_changed,
        ],
    ):
        handle = await env.client.start_workflow(
            BankSyncWorkflow.run,
            BankSyncInput(connection_id=connection, user_id=uuid.uuid4()),
            id=bank_sync_workflow_id(connection),
            task_queue=task_queue,
        )
        try:
            yield handle
        finally:
            # Left running without a worker, its timers would stop the shared server skipping time.
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate(reason="test over")


async def test_a_failing_provider_degrades_the_connection_and_one_success_restores_it(
    workflow_env: WorkflowEnvironment,
) -> None:
    stand_ins = StandIns()
    async with started(workflow_env, stand_ins) as handle:

        async def synced_once() -> bool:
            return (await handle.query(BankSyncWorkflow.state)).syncs == 1

        await eventually(synced_once)
        stand_ins.outcome = "provider_down"

        async def degraded() -> bool:
            await workflow_env.sleep(timedelta(hours=2))  # past the schedule and each cool-down
            return "degraded" in stand_ins.statuses

        await eventually(degraded, timeout=60)
        state = await handle.query(BankSyncWorkflow.state)
        assert state.status == "degraded" and state.failures >= DEGRADED_AFTER

        stand_ins.outcome = "ok"
        attempts = stand_ins.syncs
        # A webhook during the cool-down does not cut it short (bursts must not hammer the provider) ...
        await handle.signal(BankSyncWorkflow.sync_now)
        assert (await handle.query(BankSyncWorkflow.state)).syncs == 1 and stand_ins.syncs == attempts

        # ... the next try after it does, and one success closes the breaker.
        async def recovered() -> bool:
            await workflow_env.sleep(timedelta(hours=1))
            return (await handle.query(BankSyncWorkflow.state)).status == "active"

        await eventually(recovered, timeout=60)
        assert (await handle.query(BankSyncWorkflow.state)).failures == 0

        await handle.signal(BankSyncWorkflow.disconnect)
        await handle.result()
        history = await handle.fetch_history()
    assert len(stand_ins.disconnected) == 1
    await Replayer(workflows=[BankSyncWorkflow], data_converter=pydantic_data_converter).replay_workflow(history)


async def test_a_paused_provider_tells_the_member_once_waits_its_cool_down_and_resumes_by_itself(
    workflow_env: WorkflowEnvironment,
) -> None:
    stand_ins = StandIns()
    async with started(workflow_env, stand_ins) as handle:

        async def synced_once() -> bool:
            return (await handle.query(BankSyncWorkflow.state)).syncs == 1

        await eventually(synced_once)
        stand_ins.outcome = PROVIDER_PAUSED
        await workflow_env.sleep(timedelta(hours=7))  # past the next scheduled sync

        async def paused_a_while() -> bool:
            await workflow_env.sleep(timedelta(minutes=30))
            return stand_ins.syncs >= 4

        await eventually(paused_a_while, timeout=60)
        # Told once (one status change, whatever the number of paused tries); not this
        # connection's failure (its own breaker stays closed).
        assert stand_ins.statuses == ["degraded"]
        state = await handle.query(BankSyncWorkflow.state)
        assert state.status == "degraded" and state.failures == 0
        # A webhook while paused waits for the provider's cool-down like everything else.
        tries = stand_ins.syncs
        await handle.signal(BankSyncWorkflow.sync_now)
        await handle.query(BankSyncWorkflow.state)
        assert stand_ins.syncs == tries

        stand_ins.outcome = "ok"

        async def resumed() -> bool:
            await workflow_env.sleep(timedelta(minutes=12))  # one cool-down (10 min) and its jitter
            return (await handle.query(BankSyncWorkflow.state)).status == "active"

        await eventually(resumed, timeout=60)
        assert stand_ins.syncs == tries + 1 and stand_ins.statuses == ["degraded"]
        await handle.signal(BankSyncWorkflow.disconnect)
        await handle.result()
        history = await handle.fetch_history()
    await Replayer(workflows=[BankSyncWorkflow], data_converter=pydantic_data_converter).replay_workflow(history)


async def test_login_required_waits_for_the_member_to_relink(workflow_env: WorkflowEnvironment) -> None:
    stand_ins = StandIns()
    stand_ins.outcome = LOGIN_REQUIRED
    async with started(workflow_env, stand_ins) as handle:

        async def waiting() -> bool:
            return stand_ins.statuses == ["login_required"]

        await eventually(waiting)
        await workflow_env.sleep(timedelta(days=2))
        assert stand_ins.syncs == 1  # no syncing while the item needs the member

        stand_ins.outcome = "ok"
        await handle.signal(BankSyncWorkflow.relinked)

        async def active() -> bool:
            return (await handle.query(BankSyncWorkflow.state)).status == "active"

        await eventually(active)


async def test_no_consent_ends_the_workflow(workflow_env: WorkflowEnvironment) -> None:
    stand_ins = StandIns()
    stand_ins.outcome = CONSENT_MISSING
    async with started(workflow_env, stand_ins) as handle:
        await handle.result()
    assert stand_ins.syncs == 1 and stand_ins.statuses == [] and stand_ins.disconnected == []
