"""A member linking their bank costs Temporal's history shard less: the short steps of the
consent, bank-sync and behaviour workflows (telling the behaviour workflow, evaluating) are local
activities, a marker in the workflow task instead of an activity's three events and a second
workflow task. A run started as the API starts it says so in its input and asks no patch; a run
started before asks `workflow.patched` where the step first shows; histories recorded with the
activities (committed here, recorded at commit 32a3c6b) replay as they ran.

Re-record them with `BADGES_RECORD_HISTORY=1 pytest tests/workflow/test_local_steps.py -k record`
on the code whose histories you want.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from temporalio.api.history.v1 import History
from temporalio.client import WithStartWorkflowOperation, WorkflowHandle, WorkflowHistory
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from badges.domain.identity import bank_sync_workflow_id, behaviour_workflow_id, consent_workflow_id
from badges.messages.bank_sync import BankSyncInput
from badges.messages.behaviour import BehaviourInput, DataChanged
from badges.messages.consent import ConsentChanges, ConsentInput, GrantOrRevocation
from badges.workers.main import sandbox_everything
from badges.workflows.bank_sync import BankSyncWorkflow
from badges.workflows.behaviour import BehaviourWorkflow
from badges.workflows.consent import ConsentWorkflow
from tests.support import eventually
from tests.workflow import test_bank_sync, test_behaviour
from tests.workflow.test_consent import StandIns as ConsentStandIns
from tests.workflow.test_consent import consent_worker, grant

HISTORIES = Path(__file__).parent / "histories"
BANK_SYNC = HISTORIES / "bank_sync_activities.json"
BEHAVIOUR = HISTORIES / "behaviour_activities.json"
CONSENT = HISTORIES / "consent_behaviour_activities.json"
RECORDING = pytest.mark.skipif(not os.environ.get("BADGES_RECORD_HISTORY"), reason="set BADGES_RECORD_HISTORY=1")


def scheduled(history: WorkflowHistory | History) -> list[str]:
    """The activities the history scheduled (not local ones), in order."""
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]


def markers(history: WorkflowHistory | History, name: str) -> int:
    return sum(
        1
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        and event.marker_recorded_event_attributes.marker_name == name
    )


def committed(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.with_suffix(".id").read_text().strip(), path.read_text())


async def replay(workflow: type, history: WorkflowHistory) -> None:
    await Replayer(
        workflows=[workflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


# --- BankSyncWorkflow ---------------------------------------------------------------------


async def sync_twice(env: WorkflowEnvironment, start: BankSyncInput) -> tuple[WorkflowHistory, int]:
    """A sync with news at start, another on a webhook, then a disconnection: the history, and
    how often the behaviour workflow was told."""
    stand_ins = test_bank_sync.StandIns()
    task_queue = f"tq-{uuid.uuid4()}"
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
            BankSyncWorkflow.run, start, id=bank_sync_workflow_id(start.connection_id), task_queue=task_queue
        )

        async def told(count: int) -> bool:
            return stand_ins.behaviour_told == count

        await eventually(lambda: told(1))
        await handle.signal(BankSyncWorkflow.sync_now)
        await eventually(lambda: told(2))
        await handle.signal(BankSyncWorkflow.disconnect)
        await handle.result()
        return await handle.fetch_history(), stand_ins.behaviour_told


@pytest.mark.parametrize(("as_the_api_starts_it", "patch_markers"), [(True, 0), (False, 2)])
async def test_a_sync_tells_behaviour_by_a_local_activity(
    workflow_env: WorkflowEnvironment, as_the_api_starts_it: bool, patch_markers: int
) -> None:
    start = BankSyncInput(
        connection_id=uuid.uuid4(), user_id=uuid.uuid4(), tells_behaviour_locally=as_the_api_starts_it
    )
    history, told = await sync_twice(workflow_env, start)
    assert told == 2
    assert scheduled(history) == ["sync_connection", "sync_connection", "disconnect_connection"]
    # A run started before today's code asks the two patches (behaviour on sync, locally) once.
    assert markers(history, "core_patch") == patch_markers
    await replay(BankSyncWorkflow, history)


async def test_a_sync_history_recorded_with_the_activity_still_replays() -> None:
    history = committed(BANK_SYNC)
    assert scheduled(history).count("behaviour_data_changed") == 2
    await replay(BankSyncWorkflow, history)


@RECORDING
async def test_record_bank_sync_history(workflow_env: WorkflowEnvironment) -> None:
    start = BankSyncInput(connection_id=uuid.uuid4(), user_id=uuid.uuid4())
    history, _ = await sync_twice(workflow_env, start)
    BANK_SYNC.write_text(history.to_json())
    BANK_SYNC.with_suffix(".id").write_text(bank_sync_workflow_id(start.connection_id) + "\n")


# --- BehaviourWorkflow --------------------------------------------------------------------


async def evaluate_twice(env: WorkflowEnvironment, start: BehaviourInput) -> tuple[WorkflowHistory, list[int]]:
    """The backfill's evaluation at start, another when data change, then stop."""
    stand_in = test_behaviour.StandIn(env)
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=task_queue, workflows=[BehaviourWorkflow], activities=[stand_in.evaluate_behaviour]
    ):
        handle = await env.client.start_workflow(
            BehaviourWorkflow.run, start, id=behaviour_workflow_id(start.user_id), task_queue=task_queue
        )

        async def evaluated(count: int) -> bool:
            return len(stand_in.seqs) == count

        await eventually(lambda: evaluated(1))
        await handle.signal(BehaviourWorkflow.data_changed, DataChanged(reason="sync"))
        await eventually(lambda: evaluated(2))
        await handle.signal(BehaviourWorkflow.stop)
        await handle.result()
        return await handle.fetch_history(), stand_in.seqs


@pytest.mark.parametrize(("as_the_api_starts_it", "patch_markers"), [(True, 0), (False, 1)])
async def test_an_evaluation_is_a_local_activity(
    workflow_env: WorkflowEnvironment, as_the_api_starts_it: bool, patch_markers: int
) -> None:
    start = BehaviourInput(user_id=uuid.uuid4(), evaluates_locally=as_the_api_starts_it)
    history, seqs = await evaluate_twice(workflow_env, start)
    assert seqs == [1, 2]
    assert scheduled(history) == []
    assert markers(history, "core_patch") == patch_markers
    await replay(BehaviourWorkflow, history)


async def test_a_behaviour_history_recorded_with_the_activity_still_replays() -> None:
    history = committed(BEHAVIOUR)
    assert scheduled(history) == ["evaluate_behaviour", "evaluate_behaviour"]
    await replay(BehaviourWorkflow, history)


@RECORDING
async def test_record_behaviour_history(workflow_env: WorkflowEnvironment) -> None:
    start = BehaviourInput(user_id=uuid.uuid4())
    history, _ = await evaluate_twice(workflow_env, start)
    BEHAVIOUR.write_text(history.to_json())
    BEHAVIOUR.with_suffix(".id").write_text(behaviour_workflow_id(start.user_id) + "\n")


# --- ConsentWorkflow ----------------------------------------------------------------------


async def change(
    env: WorkflowEnvironment, task_queue: str, start: ConsentInput, *changes: GrantOrRevocation
) -> WorkflowHandle:
    """As the API asks (update-with-start), with `start` as the input of a run it starts."""
    operation: WithStartWorkflowOperation = WithStartWorkflowOperation(
        ConsentWorkflow.run,
        start,
        id=consent_workflow_id(start.user_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await env.client.execute_update_with_start_workflow(
        ConsentWorkflow.change, ConsentChanges(changes=list(changes)), start_workflow_operation=operation
    )
    return await operation.workflow_handle()


async def track_then_stop(env: WorkflowEnvironment, start: ConsentInput) -> tuple[WorkflowHistory, list[str]]:
    """Behaviour tracking granted, then revoked: the history and what the member's evaluation was told."""
    stand_ins = ConsentStandIns()
    member = start.user_id
    async with consent_worker(env, stand_ins) as task_queue:
        await change(env, task_queue, start, await grant(env, member, 30, "behaviour_tracking"))
        handle = await change(env, task_queue, start, "behaviour_tracking")
        history = await handle.fetch_history()
    return history, [status for scope, status in stand_ins.of(member) if scope == "behaviour"]


@pytest.mark.parametrize(("as_the_api_starts_it", "patch_markers"), [(True, 0), (False, 2)])
async def test_behaviour_tracking_starts_and_stops_the_evaluation_by_local_activities(
    workflow_env: WorkflowEnvironment, as_the_api_starts_it: bool, patch_markers: int
) -> None:
    start = ConsentInput(user_id=uuid.uuid4(), behaviour_locally=as_the_api_starts_it)
    history, told = await track_then_stop(workflow_env, start)
    assert told == ["started (consent)", "stopped"]
    assert scheduled(history) == []
    assert markers(history, "core_patch") == patch_markers
    await replay(ConsentWorkflow, history)


async def test_a_consent_history_recorded_with_the_activities_still_replays() -> None:
    history = committed(CONSENT)
    assert scheduled(history) == ["behaviour_data_changed", "stop_member_behaviour"]
    await replay(ConsentWorkflow, history)


@RECORDING
async def test_record_consent_history(workflow_env: WorkflowEnvironment) -> None:
    start = ConsentInput(user_id=uuid.uuid4())
    history, _ = await track_then_stop(workflow_env, start)
    CONSENT.write_text(history.to_json())
    CONSENT.with_suffix(".id").write_text(consent_workflow_id(start.user_id) + "\n")
