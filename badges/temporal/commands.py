"""Every start, signal, update, query and termination the application makes, one named function
each, so routes and activities say what they ask for and never how Temporal is called.

Workflows are named by their type name (the string in every history), not imported: this package
sits beside the workflows, not above them. The task queues come from the settings: live events
(a member's badge workflow, consent, erasure) on `task_queue`, batch work (bank syncs, behaviour
evaluations, exports, re-evaluations, peer-statistics releases, the Schedules' runs) on
`batch_queue`. A signal to a running workflow reaches it on whichever queue it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta
from typing import Any, Literal

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from badges.config import Settings
from badges.domain.events import BadgeEvent
from badges.domain.identity import (
    bank_sync_workflow_id,
    behaviour_workflow_id,
    consent_workflow_id,
    erasure_workflow_id,
    export_workflow_id,
    member_workflows_prefix,
    user_badges_workflow_id,
)
from badges.messages.bank_sync import BankSyncInput
from badges.messages.behaviour import BehaviourInput, DataChanged, FinancialResults
from badges.messages.comparisons import ComparativeResults
from badges.messages.consent import ConsentChanges, ConsentInput, GrantOrRevocation
from badges.messages.erasure import ErasureInput, ErasureOutcome
from badges.messages.export import ExportProgress, ExportRequest
from badges.messages.peer_stats import PeerReleaseOutcome, PeerReleaseRequest
from badges.messages.reevaluation import ReevaluationInput, ReevaluationProgress
from badges.messages.schedules import (
    AUDIT_CHECKPOINT_EVERY,
    AUDIT_CHECKPOINT_SCHEDULE_ID,
    MASTER_KEYS_EVERY,
    MASTER_KEYS_SCHEDULE_ID,
    PEER_STATS_SCHEDULE_ID,
    RELEASE_EVERY,
    RELEASE_SCHEDULE_ID,
    RETENTION_EVERY,
    RETENTION_SCHEDULE_ID,
)
from badges.messages.user_badges import CatalogueSnapshot, ReevaluationRequest, ReviewDecision, UserBadgesInput

HEALTH_TIMEOUT = timedelta(seconds=3)
# The signals BankSyncWorkflow takes: a re-link or disconnection (which start it if it is not
# running), and a provider's "new data" webhook (for a running one only).
SyncStart = Literal["relinked", "disconnect"]
SyncSignal = Literal["sync_now"]

# --- a member's badges (UserBadgesWorkflow) -------------------------------------------------


async def record_event(client: Client, settings: Settings, member_id: uuid.UUID, event: BadgeEvent) -> None:
    """Hand an accepted event to the member's workflow, starting it first if it is not running
    (signal-with-start). The real-time path: one call per event."""
    await _signal_with_start(client, settings, member_id, "record_event", event)


async def request_reevaluation(
    client: Client, settings: Settings, member_id: uuid.UUID, request: ReevaluationRequest
) -> None:
    """Ask a member's workflow to re-check badges under a newer catalogue revision (signal-with-start:
    a member whose workflow has ended, or never ran, gets one)."""
    await _signal_with_start(client, settings, member_id, "reevaluate", request)


async def start_member_workflow(
    client: Client, settings: Settings, member_id: uuid.UUID, catalogue: CatalogueSnapshot
) -> None:
    """Start the member's workflow ahead of their first event (nothing if it runs already), with
    the catalogue, so a new workflow need not load it when the first event comes."""
    await client.start_workflow(
        "UserBadgesWorkflow",
        UserBadgesInput(user_id=member_id, catalogue=catalogue, screens_back_dated=True),
        id=user_badges_workflow_id(member_id),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def record_financial_results(
    client: Client, settings: Settings, member_id: uuid.UUID, results: FinancialResults
) -> None:
    """Hand a behaviour evaluation's verdicts to the member's badge workflow, the one writer of
    their progress and awards (signal-with-start: a member who never sent an event has none yet)."""
    await _signal_with_start(client, settings, member_id, "financial", results)


async def record_comparative_results(
    client: Client, settings: Settings, member_id: uuid.UUID, results: ComparativeResults
) -> None:
    """Hand a peer release's comparative-badge verdicts to the member's badge workflow (the one
    writer of their awards), starting it if it is not running. Not `financial`: those are ordered
    evaluations, and an older one is dropped; a release's verdicts are recorded whenever they
    come, each instance once."""
    await _signal_with_start(client, settings, member_id, "comparative", results)


async def _signal_with_start(client: Client, settings: Settings, member_id: uuid.UUID, signal: str, arg: Any) -> None:
    """Signal the member's badge workflow, starting it first if it is not running. A run started
    here screens back-dated events without asking a patch (`UserBadgesInput.screens_back_dated`)."""
    await client.start_workflow(
        "UserBadgesWorkflow",
        UserBadgesInput(user_id=member_id, screens_back_dated=True),
        id=user_badges_workflow_id(member_id),
        task_queue=settings.task_queue,
        start_signal=signal,
        start_signal_args=[arg],
    )


# --- a member's behaviour (BehaviourWorkflow) -----------------------------------------------


async def behaviour_data_changed(client: Client, settings: Settings, member_id: uuid.UUID, change: DataChanged) -> None:
    """Tell the member's behaviour workflow their bank data changed, starting it (and with it the
    backfill of their history) if it is not running."""
    await client.start_workflow(
        "BehaviourWorkflow",
        BehaviourInput(user_id=member_id),
        id=behaviour_workflow_id(member_id),
        task_queue=settings.batch_queue,
        start_signal="data_changed",
        start_signal_args=[change],
    )


async def stop_behaviour(client: Client, member_id: uuid.UUID) -> bool:
    """Ask the member's behaviour workflow to evaluate no more (their consent ended). False when
    none runs."""
    try:
        await client.get_workflow_handle(behaviour_workflow_id(member_id)).signal("stop")
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        return False
    return True


async def resolve_review(client: Client, member_id: uuid.UUID, decision: ReviewDecision) -> None:
    """A reviewer's decision on a held burst, for the member's (running) workflow to apply."""
    await client.get_workflow_handle(user_badges_workflow_id(member_id)).signal("resolve_review", decision)


# --- re-evaluation after a badge changes (ReevaluationWorkflow) -----------------------------


async def start_reevaluation(client: Client, settings: Settings, workflow_id: str, request: ReevaluationInput) -> None:
    """Start the re-evaluation of one badge version; one that ran before (and did not fail) is
    left as it is, so asking twice does the work once."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            "ReevaluationWorkflow",
            request,
            id=workflow_id,
            task_queue=settings.batch_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )


async def reevaluation_progress(client: Client, workflow_id: str) -> tuple[str, ReevaluationProgress | None] | None:
    """The run's status (`running`, `completed`, ...) and, while it runs or once it completed, its
    progress; None when there is no such run (never started, or its history is past retention)."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    status = description.status.name.lower() if description.status else "unknown"
    if description.status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
        return status, await handle.query("progress", result_type=ReevaluationProgress)
    return status, None


# --- consent (ConsentWorkflow) --------------------------------------------------------------


async def change_consent(
    client: Client, settings: Settings, member_id: uuid.UUID, changes: list[GrantOrRevocation], *, wait: float
) -> bool:
    """Grants and revocations for the member's consent workflow (started if it is not running), by
    an update-with-start that answers once the workflow has recorded them: True then, within
    `wait` seconds. False when they are not recorded by then because no worker has taken them
    yet: the same request then goes as a signal too, which the workflow's history holds at once
    (an update no worker has accepted is held only in the server's memory, and a server restart
    would lose it); the workflow applies the request once, whichever comes first. Raises (an
    `RPCError`) when Temporal cannot be reached."""
    request = ConsentChanges(changes=changes, request_id=uuid.uuid4().hex)
    start: WithStartWorkflowOperation[Any, None] = WithStartWorkflowOperation(
        "ConsentWorkflow",
        ConsentInput(user_id=member_id),
        id=consent_workflow_id(member_id),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    update = asyncio.ensure_future(
        client.execute_update_with_start_workflow("change", request, start_workflow_operation=start)
    )
    try:
        await asyncio.wait([update], timeout=wait)
    finally:
        # Not answered in time, or the caller itself was cancelled (which goes on up, unswallowed).
        update.cancel()
    if await _answered(update):
        return True
    # The SDK fails the start's handle with the cancellation when no answer had come: retrieved
    # here, so it is not logged as lost. It only means "not answered yet", like the update's end.
    await _answered(asyncio.ensure_future(start.workflow_handle()))
    # Unanswered: no worker yet, or Temporal is unreachable and the SDK is still retrying.
    if not await client.service_client.check_health(timeout=HEALTH_TIMEOUT):
        raise RPCError("Temporal is not serving", RPCStatusCode.UNAVAILABLE, b"")
    await client.start_workflow(
        "ConsentWorkflow",
        ConsentInput(user_id=member_id),
        id=consent_workflow_id(member_id),
        task_queue=settings.task_queue,
        start_signal="apply_changes",
        start_signal_args=[request],
    )
    return False


async def _answered(call: asyncio.Future[Any]) -> bool:
    """Whether a call that may have been cancelled answered: False when it ended because it was
    cancelled (which the SDK reports as `WorkflowUpdateRPCTimeoutOrCancelledError` or as a
    cancellation); any other error is raised."""
    await asyncio.wait([call])
    if call.cancelled():
        return False
    error = call.exception()
    if error is None:
        return True
    if isinstance(error, WorkflowUpdateRPCTimeoutOrCancelledError | asyncio.CancelledError):
        return False
    raise error


# --- privacy (ErasureWorkflow, MemberExportWorkflow) ----------------------------------------


async def start_erasure(
    client: Client, settings: Settings, member_id: uuid.UUID
) -> WorkflowHandle[Any, ErasureOutcome]:
    """Start the member's erasure, or join the one running."""
    return await client.start_workflow(
        "ErasureWorkflow",
        ErasureInput(user_id=member_id),
        id=erasure_workflow_id(member_id),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=ErasureOutcome,
    )


async def start_export(
    client: Client, settings: Settings, request: ExportRequest
) -> WorkflowHandle[Any, ExportProgress]:
    """Start an export of everything held about the member, or join the one running."""
    return await client.start_workflow(
        "MemberExportWorkflow",
        request,
        id=export_workflow_id(request.user_id),
        task_queue=settings.batch_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=ExportProgress,
    )


async def export_progress(handle: WorkflowHandle[Any, ExportProgress]) -> ExportProgress:
    progress: ExportProgress = await handle.query("progress", result_type=ExportProgress)
    return progress


# --- bank connections (BankSyncWorkflow) ----------------------------------------------------


async def start_sync(
    client: Client,
    settings: Settings,
    member_id: uuid.UUID,
    connection_id: uuid.UUID,
    signal: SyncStart,
    interval: timedelta | None = None,
) -> None:
    """Signal the connection's sync workflow (`relinked`, `disconnect`), starting it first if it
    is not running, to sync every `interval` (default: `BADGES_BANK_SYNC_INTERVAL_SECONDS`)."""
    seconds = interval.total_seconds() if interval is not None else settings.bank_sync_interval_seconds
    await client.start_workflow(
        "BankSyncWorkflow",
        BankSyncInput(connection_id=connection_id, user_id=member_id, interval_seconds=seconds),
        id=bank_sync_workflow_id(connection_id),
        task_queue=settings.batch_queue,
        start_signal=signal,
    )


async def signal_sync(client: Client, connection_id: uuid.UUID, signal: SyncSignal) -> bool:
    """Signal a running sync workflow (`sync_now`). False when none runs (its sync has ended)."""
    try:
        await client.get_workflow_handle(bank_sync_workflow_id(connection_id)).signal(signal)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        return False
    return True


# --- ending workflows (erasure, open banking ended) -----------------------------------------


async def end_workflow(client: Client, workflow_id: str, reason: str) -> bool:
    """Terminate a workflow. False when there was none running (never ran, or already closed)."""
    try:
        await client.get_workflow_handle(workflow_id).terminate(reason=reason)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        return False
    return True


async def end_bank_sync(client: Client, connection_id: uuid.UUID, reason: str) -> bool:
    return await end_workflow(client, bank_sync_workflow_id(connection_id), reason)


async def running_member_workflows(client: Client, member_id: uuid.UUID) -> set[str]:
    """The ids of every running workflow of the member (by id prefix; visibility lags a little)."""
    query = f'WorkflowId STARTS_WITH "{member_workflows_prefix(member_id)}" AND ExecutionStatus = "Running"'
    return {execution.id async for execution in client.list_workflows(query)}


# --- peer statistics (PeerStatsReleaseWorkflow) --------------------------------------------


async def run_peer_release(client: Client, settings: Settings) -> PeerReleaseOutcome:
    """Run a release of peer statistics now, for an operator, and wait for its outcome."""
    outcome: PeerReleaseOutcome = await client.execute_workflow(
        "PeerStatsReleaseWorkflow",
        PeerReleaseRequest(requested_by="operator"),
        id=f"peers/release-{uuid.uuid4()}",
        task_queue=settings.batch_queue,
        result_type=PeerReleaseOutcome,
    )
    return outcome


# --- the programme's recurring work (Temporal Schedules) ------------------------------------


async def ensure_schedules(client: Client, settings: Settings) -> None:
    """The programme's recurring work, as Temporal Schedules (created once; later starts keep them),
    each starting its workflow on the batch task queue (a Schedule made when that work still ran
    on the live queue is moved). The audit log's checkpoints only where an anchoring key is
    configured (the worker warns if not)."""
    schedules = [
        (RELEASE_SCHEDULE_ID, "RewardsReleaseWorkflow", RELEASE_EVERY),
        (RETENTION_SCHEDULE_ID, "RetentionWorkflow", RETENTION_EVERY),
        (MASTER_KEYS_SCHEDULE_ID, "MasterKeyRotationWorkflow", MASTER_KEYS_EVERY),
        (PEER_STATS_SCHEDULE_ID, "PeerStatsReleaseWorkflow", timedelta(hours=settings.peer_release_interval_hours)),
    ]
    if settings.parsed_audit_anchor_keys:
        schedules.append((AUDIT_CHECKPOINT_SCHEDULE_ID, "AuditCheckpointWorkflow", AUDIT_CHECKPOINT_EVERY))
    for schedule_id, workflow_type, every in schedules:
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(workflow_type, id=schedule_id, task_queue=settings.batch_queue),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
        try:
            await client.create_schedule(schedule_id, schedule)
        except ScheduleAlreadyRunningError:
            await _start_on(client.get_schedule_handle(schedule_id), settings.batch_queue)


async def _start_on(schedule: ScheduleHandle, task_queue: str) -> None:
    """Have the Schedule start its workflow on `task_queue`, changing nothing else (nothing at all
    when it does already)."""

    def moved(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
        action = current.description.schedule.action
        if not isinstance(action, ScheduleActionStartWorkflow) or action.task_queue == task_queue:
            return None
        action.task_queue = task_queue
        return ScheduleUpdate(schedule=current.description.schedule)

    await schedule.update(moved)
