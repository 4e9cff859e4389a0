"""ConsentWorkflow's logic on the time-skipping server, its activities stood in for: the `change`
update answers once its changes are recorded, a grant is reminded of and expires, a renewal
moves the expiry, revoking open banking disconnects the member's banks first, and the signals
that workflows started before the update still receive keep working."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio import activity
from temporalio.client import WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from badges.domain.consent import ConsentGrant
from badges.domain.identity import consent_workflow_id
from badges.messages.bank_sync import MemberRef
from badges.messages.behaviour import DataChanged
from badges.messages.consent import ConsentChange, ConsentChanges, ConsentInput, GrantOrRevocation
from badges.temporal import change_consent
from badges.workflows.consent import ConsentWorkflow
from tests.conftest import make_settings
from tests.support import eventually


class StandIns:
    """The workflow's activities: every recorded change, in order, and every bank disconnection."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, str, str]] = []  # (member, scope, status) or (member, "banks", "disconnected")

    @activity.defn(name="record_consent")
    async def record_consent(self, change: ConsentChange) -> None:
        self.steps.append((str(change.user_id), change.scope, change.status))

    @activity.defn(name="disconnect_member")
    async def disconnect_member(self, member: MemberRef) -> int:
        self.steps.append((str(member.user_id), "banks", "disconnected"))
        return 0

    @activity.defn(name="behaviour_data_changed")
    async def behaviour_data_changed(self, user_id: uuid.UUID, change: DataChanged) -> bool:
        self.steps.append((str(user_id), "behaviour", f"started ({change.reason})"))
        return True

    @activity.defn(name="stop_member_behaviour")
    async def stop_member_behaviour(self, user_id: uuid.UUID) -> bool:
        self.steps.append((str(user_id), "behaviour", "stopped"))
        return True

    def of(self, member: uuid.UUID) -> list[tuple[str, str]]:
        return [(scope, status) for who, scope, status in self.steps if who == str(member)]


@asynccontextmanager
async def consent_worker(env: WorkflowEnvironment, stand_ins: StandIns) -> AsyncIterator[str]:
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ConsentWorkflow],
        activities=[
            stand_ins.record_consent,
            stand_ins.disconnect_member,
            stand_ins.behaviour_data_changed,
            stand_ins.stop_member_behaviour,
        ],
    ):
        try:
            yield task_queue
        finally:
            # A consent workflow never ends by itself; left running without a worker, its next
            # timer would stop the shared server from skipping time for the tests after this one.
            for member in {who for who, _, _ in stand_ins.steps}:
                with contextlib.suppress(RPCError):
                    await env.client.get_workflow_handle(consent_workflow_id(member)).terminate(reason="test over")


async def grant(env: WorkflowEnvironment, member: uuid.UUID, days: int, scope: str = "open_banking") -> ConsentGrant:
    now = await env.get_current_time()
    return ConsentGrant(scope=scope, purpose="budgeting", expires_at=now + timedelta(days=days))  # type: ignore[arg-type]


async def change(
    env: WorkflowEnvironment, task_queue: str, member: uuid.UUID, *changes: GrantOrRevocation
) -> WorkflowHandle:
    """As the API asks: update-with-start, answered once the changes are recorded."""
    start: WithStartWorkflowOperation = WithStartWorkflowOperation(
        ConsentWorkflow.run,
        ConsentInput(user_id=member),
        id=consent_workflow_id(member),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await env.client.execute_update_with_start_workflow(
        ConsentWorkflow.change, ConsentChanges(changes=list(changes)), start_workflow_operation=start
    )
    return await start.workflow_handle()


async def test_the_update_answers_once_its_changes_are_recorded(workflow_env: WorkflowEnvironment) -> None:
    stand_ins = StandIns()
    member = uuid.uuid4()
    async with consent_worker(workflow_env, stand_ins) as task_queue:
        await change(
            workflow_env,
            task_queue,
            member,
            await grant(workflow_env, member, 30),
            await grant(workflow_env, member, 30, "demographics"),
        )
        assert stand_ins.of(member) == [("open_banking", "granted"), ("demographics", "granted")]
        # Revoking open banking ends the member's bank connections before it is recorded.
        handle = await change(workflow_env, task_queue, member, "open_banking")
        assert stand_ins.of(member)[2:] == [("banks", "disconnected"), ("open_banking", "revoked")]
        # A grant that breaks the scope's rules (open banking: at most 90 days) is refused, not recorded.
        await change(workflow_env, task_queue, member, await grant(workflow_env, member, 91))
        assert len(stand_ins.of(member)) == 4
        state = await handle.query(ConsentWorkflow.consents)
        history = await handle.fetch_history()
    assert {scope: consent.status for scope, consent in state.scopes.items()} == {
        "open_banking": "revoked",
        "demographics": "active",
    }
    await Replayer(workflows=[ConsentWorkflow], data_converter=pydantic_data_converter).replay_workflow(history)


async def test_a_grant_is_reminded_of_then_expires_and_a_renewal_moves_the_expiry(
    workflow_env: WorkflowEnvironment,
) -> None:
    stand_ins = StandIns()
    expiring, renewing = uuid.uuid4(), uuid.uuid4()
    async with consent_worker(workflow_env, stand_ins) as task_queue:
        await change(workflow_env, task_queue, expiring, await grant(workflow_env, expiring, 30))
        await change(workflow_env, task_queue, renewing, await grant(workflow_env, renewing, 30))

        await workflow_env.sleep(timedelta(days=20))
        await change(workflow_env, task_queue, renewing, await grant(workflow_env, renewing, 60))  # 10 days early
        await workflow_env.sleep(timedelta(days=4))

        async def reminded() -> bool:
            return stand_ins.of(expiring) == [("open_banking", "granted"), ("open_banking", "expiring")]

        await eventually(reminded)
        await workflow_env.sleep(timedelta(days=7))

        async def expired() -> bool:
            return stand_ins.of(expiring)[2:] == [("banks", "disconnected"), ("open_banking", "expired")]

        await eventually(expired)
    assert stand_ins.of(renewing) == [("open_banking", "granted"), ("open_banking", "granted")]


async def test_the_signals_of_workflows_started_before_the_update_still_work(workflow_env: WorkflowEnvironment) -> None:
    stand_ins = StandIns()
    member = uuid.uuid4()
    async with consent_worker(workflow_env, stand_ins) as task_queue:
        handle = await workflow_env.client.start_workflow(
            ConsentWorkflow.run,
            ConsentInput(user_id=member),
            id=consent_workflow_id(member),
            task_queue=task_queue,
            start_signal="grant",
            start_signal_args=[await grant(workflow_env, member, 10, "demographics")],
        )

        async def granted() -> bool:
            return stand_ins.of(member) == [("demographics", "granted")]

        await eventually(granted)
        await handle.signal(ConsentWorkflow.revoke, "demographics")

        async def revoked() -> bool:
            return stand_ins.of(member) == [("demographics", "granted"), ("demographics", "revoked")]

        await eventually(revoked)


async def test_a_change_no_worker_has_taken_yet_is_applied_when_one_comes(workflow_env: WorkflowEnvironment) -> None:
    settings = make_settings("postgresql://unused", BADGES_TASK_QUEUE=f"tq-{uuid.uuid4()}")
    member = uuid.uuid4()
    demographics = await grant(workflow_env, member, 10, "demographics")
    # No worker polls this queue yet: the answer comes after the wait, and says "not yet".
    assert not await change_consent(workflow_env.client, settings, member, [demographics], wait=1.0)
    stand_ins = StandIns()
    async with Worker(
        workflow_env.client,
        task_queue=settings.task_queue,
        workflows=[ConsentWorkflow],
        activities=[
            stand_ins.record_consent,
            stand_ins.disconnect_member,
            stand_ins.behaviour_data_changed,
            stand_ins.stop_member_behaviour,
        ],
    ):

        async def recorded() -> bool:
            return stand_ins.of(member) == [("demographics", "granted")]

        await eventually(recorded)
        # With a worker, the answer comes once the change is recorded. The grant came twice (the
        # update the server held, and the signal sent when it was not answered) and counted once.
        assert await change_consent(workflow_env.client, settings, member, ["demographics"], wait=10.0)
        assert stand_ins.of(member) == [("demographics", "granted"), ("demographics", "revoked")]


async def test_a_request_that_arrives_as_update_and_as_signal_is_applied_once(
    workflow_env: WorkflowEnvironment,
) -> None:
    stand_ins = StandIns()
    member = uuid.uuid4()
    async with consent_worker(workflow_env, stand_ins) as task_queue:
        request = ConsentChanges(changes=[await grant(workflow_env, member, 10, "demographics")], request_id="r-1")
        handle = await workflow_env.client.start_workflow(
            ConsentWorkflow.run,
            ConsentInput(user_id=member),
            id=consent_workflow_id(member),
            task_queue=task_queue,
            start_signal="apply_changes",
            start_signal_args=[request],
        )
        await handle.execute_update(ConsentWorkflow.change, request)
        await handle.execute_update(ConsentWorkflow.change, ConsentChanges(changes=["demographics"], request_id="r-2"))
        await handle.signal(ConsentWorkflow.apply_changes, request)  # late: already applied
        await handle.execute_update(ConsentWorkflow.change, ConsentChanges(changes=[], request_id="r-3"))
    assert stand_ins.of(member) == [("demographics", "granted"), ("demographics", "revoked")]


async def test_behaviour_tracking_starts_the_evaluation_and_its_end_stops_it(workflow_env: WorkflowEnvironment) -> None:
    stand_ins = StandIns()
    member = uuid.uuid4()
    async with consent_worker(workflow_env, stand_ins) as task_queue:
        await change(workflow_env, task_queue, member, await grant(workflow_env, member, 30, "behaviour_tracking"))
        assert stand_ins.of(member) == [("behaviour_tracking", "granted"), ("behaviour", "started (consent)")]
        # Revoked: the evaluation stops before the revocation is recorded (which deletes its findings).
        handle = await change(workflow_env, task_queue, member, "behaviour_tracking")
        assert stand_ins.of(member)[2:] == [("behaviour", "stopped"), ("behaviour_tracking", "revoked")]
        history = await handle.fetch_history()
    await Replayer(workflows=[ConsentWorkflow], data_converter=pydantic_data_converter).replay_workflow(history)
