"""Live events and batch work on task queues of their own: a linked bank's sync, the behaviour
evaluation it starts and an export run on the batch queue, while the member's events go on being
recorded on the live one; the Schedules start their work on the batch queue, and one made when
that work still ran on the live queue is moved; worker processes of one queue each."""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleUpdate, ScheduleUpdateInput
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import PollerBehaviorAutoscaling, WorkerConfig

from badges.activities.webhooks import make_webhook_client
from badges.config import Settings
from badges.db.keys import KeyStore
from badges.domain.identity import (
    bank_sync_workflow_id,
    behaviour_workflow_id,
    export_workflow_id,
    user_badges_workflow_id,
)
from badges.messages.schedules import RETENTION_EVERY, RETENTION_SCHEDULE_ID
from badges.temporal import ensure_schedules
from badges.workers.main import build_workers
from tests.integration.test_behaviour import SCOPES, consent
from tests.integration.test_open_banking import link, wait_status
from tests.processes import start_worker
from tests.sandbox.conftest import Sandbox
from tests.support import dev_token, eventually, real_time_event

pytestmark = pytest.mark.usefixtures("worker")


async def task_queue_of(env: WorkflowEnvironment, workflow_id: str) -> str:
    return (await env.client.get_workflow_handle(workflow_id).describe()).task_queue


async def test_bank_sync_behaviour_and_export_run_on_the_batch_queue_and_events_stay_live(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, dev_server: WorkflowEnvironment, system_settings: Settings
) -> None:
    sub = f"queues-{uuid.uuid4()}@example.com"
    headers = await dev_token(client, sub)
    me = (await client.get("/v1/me", headers=headers)).json()["userId"]
    await consent(client, headers, *SCOPES)
    linked = await link(client, headers, sandbox_bank, "user_saver")
    assert linked.status_code == 201, linked.text
    await wait_status(client, headers, "active")
    assert system_settings.batch_queue != system_settings.task_queue
    assert await task_queue_of(dev_server, bank_sync_workflow_id(linked.json()["id"])) == system_settings.batch_queue
    assert await task_queue_of(dev_server, behaviour_workflow_id(me)) == system_settings.batch_queue
    assert (await client.get("/v1/me/export", headers=headers)).status_code in (200, 202)
    assert await task_queue_of(dev_server, export_workflow_id(me)) == system_settings.batch_queue

    # A live event meanwhile: recorded by the member's badge workflow, on the live queue.
    body = real_time_event(f"calc-{uuid.uuid4()}", sub)
    assert (await client.post("/v1/events", json=body, headers=headers)).status_code == 202

    async def counted() -> bool:
        badges = (await client.get("/v1/me/badges", headers=headers)).json()["badges"]
        explorer = next(b for b in badges if b["badgeId"] == "calculator-explorer")
        return bool(explorer["progress"] == 1)

    await eventually(counted)
    assert await task_queue_of(dev_server, user_badges_workflow_id(me)) == system_settings.task_queue


async def test_schedules_start_their_work_on_the_batch_queue_and_an_older_one_is_moved(
    dev_server: WorkflowEnvironment, system_settings: Settings
) -> None:
    await ensure_schedules(dev_server.client, system_settings)
    schedule = dev_server.client.get_schedule_handle(RETENTION_SCHEDULE_ID)
    action = (await schedule.describe()).schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow) and action.task_queue == system_settings.batch_queue

    def on_the_live_queue(current: ScheduleUpdateInput) -> ScheduleUpdate:
        """As a Schedule made before batch work had a queue of its own."""
        assert isinstance(current.description.schedule.action, ScheduleActionStartWorkflow)
        current.description.schedule.action.task_queue = system_settings.task_queue
        return ScheduleUpdate(schedule=current.description.schedule)

    await schedule.update(on_the_live_queue)
    await ensure_schedules(dev_server.client, system_settings)  # the worker's next start
    described = (await schedule.describe()).schedule
    assert isinstance(described.action, ScheduleActionStartWorkflow)
    assert described.action.task_queue == system_settings.batch_queue
    assert described.action.workflow == "RetentionWorkflow"
    assert described.spec.intervals[0].every == RETENTION_EVERY


TRANSIENT = {RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}


def queue_pollers(client: Client, queue: str) -> Callable[[], Awaitable[set[str]]]:
    """The identities (`pid@host`) of the workers polling `queue` for workflow tasks, when called."""

    async def identities() -> set[str]:
        try:
            described = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                )
            )
        except RPCError as error:
            # The server cancels a describe that meets a queue partition still loading (seen in CI,
            # 'operation was canceled'): no pollers known yet, ask again.
            if error.status not in TRANSIENT:
                raise
            return set()
        return {poller.identity for poller in described.pollers}

    return identities


async def test_worker_processes_split_by_queue_and_the_batch_one_yields_the_cpu(
    dev_server: WorkflowEnvironment, system_settings: Settings
) -> None:
    """`BADGES_WORKER_QUEUES`: a live-only process polls only the live queue, a batch-only one only
    the batch queue, at `BADGES_BATCH_NICE` niceness above its parent's."""
    settings = system_settings.model_copy(update={"task_queue": f"tq-{uuid.uuid4()}", "batch_nice": 7})
    live = start_worker(settings.model_copy(update={"worker_queues": "live"}))
    batch = start_worker(settings.model_copy(update={"worker_queues": "batch"}))
    try:
        live_pollers, batch_pollers = (
            queue_pollers(dev_server.client, settings.task_queue),
            queue_pollers(dev_server.client, settings.batch_queue),
        )

        async def both_polling() -> bool:
            live_ids, batch_ids = await live_pollers(), await batch_pollers()
            return any(i.startswith(f"{live.pid}@") for i in live_ids) and any(
                i.startswith(f"{batch.pid}@") for i in batch_ids
            )

        await eventually(both_polling, timeout=60)
        assert not any(i.startswith(f"{batch.pid}@") for i in await live_pollers())
        assert not any(i.startswith(f"{live.pid}@") for i in await batch_pollers())
        assert os.getpriority(os.PRIO_PROCESS, batch.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 7
        assert os.getpriority(os.PRIO_PROCESS, live.pid) == os.getpriority(os.PRIO_PROCESS, 0)
    finally:
        for process in (live, batch):
            process.terminate()
            process.wait(30)


# The live and the batch worker's configuration as `build_workers` makes them, with changes to the
# settings (on a task queue of their own).
WorkerConfigs = Callable[..., Awaitable[tuple[WorkerConfig, WorkerConfig]]]


@pytest.fixture
def worker_configs(
    dev_server: WorkflowEnvironment,
    system_settings: Settings,
    pool: AsyncConnectionPool,
    engine: AsyncEngine,
    keys: KeyStore,
) -> WorkerConfigs:
    async def configs(**changes: object) -> tuple[WorkerConfig, WorkerConfig]:
        settings = system_settings.model_copy(update={"task_queue": f"tq-{uuid.uuid4()}", **changes})
        async with make_webhook_client() as http:
            workers = build_workers(dev_server.client, settings, pool, engine=engine, keys=keys, http=http)
        assert workers.live is not None and workers.batch is not None
        return workers.live.config(), workers.batch.config()

    return configs


async def test_batch_activities_are_rate_limited_on_the_whole_queue_when_configured(
    worker_configs: WorkerConfigs,
) -> None:
    for per_second, expected in ((0, None), (12.5, 12.5)):
        live, batch = await worker_configs(batch_activities_per_second=per_second)
        assert batch.get("max_task_queue_activities_per_second") == expected
        assert live.get("max_task_queue_activities_per_second") is None
        # Live workflow tasks are polled as the server's backlog asks, batch ones at the default.
        assert isinstance(live.get("workflow_task_poller_behavior"), PollerBehaviorAutoscaling)
        assert not isinstance(batch.get("workflow_task_poller_behavior"), PollerBehaviorAutoscaling)


async def test_a_stopping_worker_gives_running_activities_the_configured_time_to_finish(
    worker_configs: WorkerConfigs,
) -> None:
    """SIGTERM (a rolling restart) lets an activity in flight finish instead of cancelling it at
    once (Temporal's default graceful shutdown timeout is zero)."""
    for config in await worker_configs(worker_shutdown_seconds=17.5):
        assert config.get("graceful_shutdown_timeout") == timedelta(seconds=17.5)


async def test_each_worker_caches_as_many_workflow_runs_as_configured(worker_configs: WorkerConfigs) -> None:
    """`BADGES_WORKER_MAX_CACHED_WORKFLOWS` bounds the sticky cache, and so the worker's full
    garbage collections, which walk every cached run (docs/deployment.md: What scales how)."""
    live, batch = await worker_configs(worker_max_cached_workflows=1234)
    assert live.get("max_cached_workflows") == 1234
    assert batch.get("max_cached_workflows") == 1234
    assert Settings.model_fields["worker_max_cached_workflows"].default == 1000  # as documented (docs/operations.md)


async def test_a_live_worker_runs_at_most_the_configured_workflow_tasks_at_once(
    worker_configs: WorkerConfigs, system_settings: Settings
) -> None:
    """`BADGES_LIVE_MAX_WORKFLOW_TASKS` bounds what one process holds at once, so that after a
    restart (every member's run replayed) no task waits so long in the process that it outlasts
    Temporal's workflow-task timeout and is handed out and replayed again (bench/RESULTS.md)."""
    live, batch = await worker_configs(live_max_concurrent_workflow_tasks=12)
    assert live.get("max_concurrent_workflow_tasks") == 12
    assert batch.get("max_concurrent_workflow_tasks") == system_settings.batch_max_concurrent_workflow_tasks
