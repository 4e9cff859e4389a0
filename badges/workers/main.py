"""The worker process (`python -m badges.workers.main`): runs the badge workflows and activities,
live events on the task queue and batch work on the batch task queue, each with a worker of its own."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pkgutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import httpx
import uvloop
from prometheus_client import start_http_server
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.worker import PollerBehaviorAutoscaling, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import badges
from badges.activities.audit import AuditAnchorActivities
from badges.activities.banking import BankingActivities, ProviderHealth
from badges.activities.behaviour import BehaviourActivities
from badges.activities.catalogue import CatalogueActivities
from badges.activities.consent import ConsentActivities
from badges.activities.contact_stats import ContactStatsActivities
from badges.activities.erasure import ErasureActivities
from badges.activities.export import ExportActivities
from badges.activities.master_keys import MasterKeyActivities
from badges.activities.peer_awards import PeerAwardActivities
from badges.activities.peer_stats import PeerStatsActivities
from badges.activities.progress import ProgressActivities
from badges.activities.reevaluation import ReevaluationActivities
from badges.activities.retention import RetentionActivities
from badges.activities.rewards import RewardActivities
from badges.activities.webhooks import WebhookActivities, make_webhook_client
from badges.banking import make_providers
from badges.config import Settings
from badges.db.audit_checkpoints import AnchorKeys, CheckpointStore
from badges.db.engine import process_engine
from badges.db.erasure import ERASURE_CHANNEL
from badges.db.keys import KeyStore
from badges.db.master_keys import KeyPolicy, configured_master_keys
from badges.db.outbox import listening
from badges.db.pool import open_process_pool
from badges.db.progress import ProgressWriter
from badges.heap import freeze_startup_heap
from badges.insights.categoriser import load as load_categoriser
from badges.metrics import process_registry
from badges.temporal import Client, connect, ensure_schedules, sdk_metrics_runtime
from badges.temporal.inbound import FittingArgumentsInterceptor
from badges.workflows.audit_checkpoint import AuditCheckpointWorkflow
from badges.workflows.bank_sync import BankSyncWorkflow
from badges.workflows.behaviour import BehaviourWorkflow
from badges.workflows.consent import ConsentWorkflow
from badges.workflows.erasure import ErasureWorkflow
from badges.workflows.export import MemberExportWorkflow
from badges.workflows.master_keys import MasterKeyRotationWorkflow
from badges.workflows.peer_stats import PeerStatsReleaseWorkflow
from badges.workflows.reevaluation import ReevaluationWorkflow
from badges.workflows.retention import RetentionWorkflow
from badges.workflows.rewards_release import RewardsReleaseWorkflow
from badges.workflows.user_badges import UserBadgesWorkflow
from badges.workflows.webhook_delivery import WebhookDeliveryWorkflow

log = logging.getLogger("badges.worker")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox, with our own modules passed through: they are deterministic (workflow code
    imports only `domain/` and `messages/`), and re-importing them for every new workflow
    run cost about 4 ms of CPU per member workflow started (bench/workflow_start.py)."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules("badges"))


def sandbox_everything() -> dict[str, WorkflowRunner]:
    """Worker or Replayer arguments for tests: every workflow in the sandbox, those that opt out
    for speed (`UserBadgesWorkflow`, `sandboxed=False`) included, with `badges.workflows` imported
    inside it rather than passed through, so a non-deterministic call in workflow code (the clock,
    randomness, I/O) fails a test instead of a replay in production. `badges.domain` and
    `badges.messages` stay passed through (workflows import them so, as their models are shared
    with the activities); a lint rule keeps the clock and randomness out of `domain/` (TID251 in
    pyproject.toml)."""
    passed = (f"badges.{module.name}" for module in pkgutil.iter_modules(badges.__path__))
    restrictions = SandboxRestrictions.default.with_passthrough_modules(
        *(name for name in passed if name != "badges.workflows")
    )
    runner = SandboxedWorkflowRunner(restrictions=restrictions)
    return {"workflow_runner": runner, "unsandboxed_workflow_runner": runner}


# Live events: what a member's request or event waits on.
LIVE_WORKFLOWS: list[type] = [UserBadgesWorkflow, WebhookDeliveryWorkflow, ConsentWorkflow, ErasureWorkflow]
# Batch work: bank syncs and their backfills, behaviour evaluations, exports, re-evaluations and
# the Schedules' runs. Started on the batch queue; the live worker runs them too for the runs
# started on its queue before batch work had its own (a run keeps its queue, continue-as-new
# and activities included).
BATCH_WORKFLOWS: list[type] = [
    BankSyncWorkflow,
    BehaviourWorkflow,
    MemberExportWorkflow,
    ReevaluationWorkflow,
    RetentionWorkflow,
    RewardsReleaseWorkflow,
    AuditCheckpointWorkflow,
    MasterKeyRotationWorkflow,
    PeerStatsReleaseWorkflow,
]
# Live workflow tasks are fetched by as many polls as the server's backlog asks for (it says so in
# each poll's answer), not a fixed five: each poll waits on the server's round trip, which grows
# when a backfill loads it, and five such polls in flight drain fewer tasks a second than members'
# events make, so the tasks queued in the server, not in an idle worker (`bench.backfill --stages`).
LIVE_WORKFLOW_POLLERS = PollerBehaviorAutoscaling(minimum=2, maximum=64, initial=8)


@dataclass
class Workers:
    """The worker process's workers, run together (`async with`): `live` polls the task queue,
    `batch` the batch task queue with its own limits; a process may run only one of them
    (`BADGES_WORKER_QUEUES`)."""

    live: Worker | None
    batch: Worker | None
    _running: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def __aenter__(self) -> Workers:
        async with contextlib.AsyncExitStack() as starting:
            for worker in (self.live, self.batch):
                if worker is not None:
                    await starting.enter_async_context(worker)
            self._running = starting.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._running.aclose()


def build_workers(
    client: Client,
    settings: Settings,
    pool: AsyncConnectionPool,
    *,
    engine: AsyncEngine,
    keys: KeyStore,
    http: httpx.AsyncClient,
    sandboxed: bool = False,
    writer: ProgressWriter | None = None,
    queues: Literal["both", "live", "batch"] = "both",
    provider_health: ProviderHealth | None = None,
) -> Workers:
    """The live and batch workers (`queues`: both, or only `live` or only `batch`); the caller owns
    `pool`, `engine` and `http` (`make_webhook_client()`) and closes them after the workers have
    shut down. `sandboxed`: every workflow in the sandbox, opted out or not (`sandbox_everything`),
    as the workflow tests run them.
    `writer`: the process's progress writer, when the caller reports its metrics."""
    progress = ProgressActivities(pool, keys, writer)
    catalogue = CatalogueActivities(engine)
    reevaluation = ReevaluationActivities(engine, client, settings, keys)
    webhooks = WebhookActivities(engine, keys, http, allow_private_targets=settings.webhook_allow_private_targets)
    erasure = ErasureActivities(pool, client, keys)
    export = ExportActivities(pool, keys)
    master_keys = MasterKeyActivities(pool, keys.master, KeyPolicy.from_settings(settings))
    banking = BankingActivities(
        pool, keys, make_providers(settings), client, load_categoriser(), settings.provider_breaker, provider_health
    )
    behaviour = BehaviourActivities(pool, engine, keys, client, settings)
    anchor_keys = settings.parsed_audit_anchor_keys
    audit_anchor = AuditAnchorActivities(
        pool, CheckpointStore(settings.audit_checkpoint_dir), AnchorKeys(anchor_keys) if anchor_keys else None
    )
    live_activities: list[Callable[..., Any]] = [
        progress.record_progress,
        progress.load_held_events,
        progress.record_dead_letter,
        progress.record_dropped_awards,
        catalogue.load_catalogue,
        webhooks.deliver_webhook,
        webhooks.record_webhook_outcome,
        ConsentActivities(pool).record_consent,
        behaviour.stop_member_behaviour,
        banking.disconnect_member,
        erasure.block_member,
        erasure.end_member_workflows,
        erasure.delete_member_rows,
        erasure.destroy_member_key,
        erasure.record_erasure_step,
    ]
    batch_activities: list[Callable[..., Any]] = [
        banking.sync_connection,
        banking.record_status,
        banking.disconnect_connection,
        behaviour.evaluate_behaviour,
        behaviour.behaviour_data_changed,  # also the consent workflow's, on the live queue
        export.begin_export,
        export.export_section,
        export.finish_export,
        reevaluation.members_with_progress,
        reevaluation.signal_reevaluation,
        RetentionActivities(pool, engine).purge_expired,
        RewardActivities(pool).release_deferred_rewards,
        audit_anchor.checkpoint_audit_log,
        master_keys.rotate_master_keys,
        PeerStatsActivities(pool, engine, settings).release_peer_stats,
        ContactStatsActivities(pool, settings).release_contact_stats,
        PeerAwardActivities(pool, engine, client, settings, keys).award_comparative_badges,
    ]
    common: dict[str, Any] = {
        # The codec refuses payloads not sealed for the workflow's owner; this, calls with too few.
        "interceptors": [FittingArgumentsInterceptor()],
        "max_cached_workflows": settings.worker_max_cached_workflows,
        # SIGTERM (a restart): the activities running finish rather than being cancelled mid-write.
        "graceful_shutdown_timeout": timedelta(seconds=settings.worker_shutdown_seconds),
        **(sandbox_everything() if sandboxed else {"workflow_runner": workflow_runner()}),
    }
    live = (
        None
        if queues == "batch"
        else Worker(
            client,
            task_queue=settings.task_queue,
            workflows=LIVE_WORKFLOWS + BATCH_WORKFLOWS,
            activities=live_activities + batch_activities,
            workflow_task_poller_behavior=LIVE_WORKFLOW_POLLERS,
            max_concurrent_workflow_tasks=settings.live_max_concurrent_workflow_tasks,
            **common,
        )
    )
    # Its own slots: however much batch work waits, it holds at most this many activities and
    # workflow tasks (and so database connections of the pool) at once.
    batch = (
        None
        if queues == "live"
        else Worker(
            client,
            task_queue=settings.batch_queue,
            workflows=BATCH_WORKFLOWS,
            activities=batch_activities,
            max_concurrent_activities=settings.batch_max_concurrent_activities,
            max_concurrent_workflow_tasks=settings.batch_max_concurrent_workflow_tasks,
            max_task_queue_activities_per_second=settings.batch_activities_per_second or None,
            **common,
        )
    )
    return Workers(live, batch)


async def forget_erased_keys(libpq_url: str, keys: KeyStore) -> None:
    """Forget a member's cached keys as soon as their erasure is announced (`ERASURE_CHANNEL`), as
    the API processes do, so this process never seals a payload with the key of an erased member
    (one it cached before another process destroyed it); everything when (re)connecting, as
    notices may have been lost meanwhile. Runs until cancelled."""
    while True:
        try:
            async with listening(libpq_url, ERASURE_CHANNEL) as connection:
                keys.forget_all()
                async for notify in connection.notifies():
                    keys.forget(notify.payload)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("erasure listener lost its connection; reconnecting")
            await asyncio.sleep(1.0)


def settle_heap(settings: Settings) -> None:
    """Once started: the start-up objects out of the collector's reach, and its thresholds as
    configured (`BADGES_WORKER_GC_THRESHOLDS`, docs/deployment.md: What scales how)."""
    freeze_startup_heap()
    gc.set_threshold(*settings.parsed_worker_gc_thresholds)


# Connections a process polling both queues keeps for the live path's progress writes beside its
# batch activities (each of those holds one of the same pool's connections while it runs).
LIVE_CONNECTIONS_BESIDE_BATCH = 4


def worker_pool_size(settings: Settings) -> int:
    """This process's psycopg pool: `BADGES_DB_POOL_SIZE`, or more where what it polls may use more
    at once (every batch activity holds a connection; a process polling both queues also writes
    live progress on it), so a backfill never makes a live event's write wait for a connection."""
    if settings.worker_queues == "live":
        return settings.db_pool_size
    needed = settings.batch_max_concurrent_activities
    if settings.worker_queues == "both":
        needed += LIVE_CONNECTIONS_BESIDE_BATCH
    return max(settings.db_pool_size, needed)


async def run(settings: Settings) -> None:
    # Within the process's share of PostgreSQL's connections (docs/deployment.md).
    engine = process_engine(settings)
    pool = await open_process_pool(settings, max_size=worker_pool_size(settings))
    keys = KeyStore(
        engine,
        configured_master_keys(settings),
        max_entries=settings.key_cache_size,
        max_age_seconds=settings.key_cache_seconds,
    )
    writer = ProgressWriter(pool)
    provider_health = ProviderHealth()
    if settings.worker_metrics_port:
        # A thread of its own: a scrape never waits for the event loop, nor slows it.
        start_http_server(settings.worker_metrics_port, registry=process_registry(keys, writer, provider_health))
    # The SDK's own metrics (`temporal_*`) on a port of their own, served by the SDK's core.
    runtime = sdk_metrics_runtime(settings.worker_sdk_metrics_port) if settings.worker_sdk_metrics_port else None
    client = await connect(settings, keys, runtime=runtime)
    http = make_webhook_client()
    if settings.worker_queues == "batch":
        os.nice(settings.batch_nice)  # the live processes on this machine come first
    workers = build_workers(
        client,
        settings,
        pool,
        engine=engine,
        keys=keys,
        http=http,
        writer=writer,
        queues=settings.worker_queues,
        provider_health=provider_health,
    )
    if not settings.parsed_audit_anchor_keys:
        log.warning(
            "BADGES_AUDIT_ANCHOR_KEYS is not set: the audit log is not anchored (no signed checkpoints), so a"
            " removed tail or a recomputed chain would go unnoticed (docs/api/audit.md)"
        )
    await ensure_schedules(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    erasures = asyncio.create_task(forget_erased_keys(settings.libpq_url, keys))
    settle_heap(settings)
    polled = [
        f"{worker.task_queue} ({role})" for role, worker in (("live", workers.live), ("batch", workers.batch)) if worker
    ]
    log.info("worker polling task queues %s at %s", " and ".join(polled), settings.temporal_address)
    async with workers:
        await stop.wait()
        log.info("worker shutting down")
    erasures.cancel()
    await http.aclose()
    await pool.close()
    await engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # On uvloop, as uvicorn runs the API: the SDK hands every activation and activity result
    # between the event loop and its threads, and uvloop's loop cut the worker's CPU per event by
    # about a tenth (bench/RESULTS.md).
    uvloop.run(run(Settings()))  # type: ignore[call-arg]


if __name__ == "__main__":
    main()
