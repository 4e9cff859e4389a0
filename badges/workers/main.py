"""The worker process (`python -m badges.workers.main`): runs the badge workflows and activities."""

from __future__ import annotations

import asyncio
import logging
import signal

from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from badges.activities.progress import ProgressActivities
from badges.config import Settings
from badges.db.engine import make_engine
from badges.db.keys import KeyStore, MasterKeys
from badges.db.pool import open_pool
from badges.workers.converter import make_data_converter
from badges.workflows.user_badges import UserBadgesWorkflow

log = logging.getLogger("badges.worker")


async def connect_temporal(settings: Settings, keys: KeyStore) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=make_data_converter(keys),
    )


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox, with our own modules passed through: they are deterministic (workflow code
    imports only `domain/` and activity signatures), and re-importing them for every new workflow
    run cost about 4 ms of CPU per member workflow started (bench/workflow_start.py)."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules("badges"))


def build_worker(client: Client, settings: Settings, pool: AsyncConnectionPool) -> Worker:
    progress = ProgressActivities(pool)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[UserBadgesWorkflow],
        activities=[progress.record_progress],
        max_cached_workflows=10_000,
        workflow_runner=workflow_runner(),
    )


async def run(settings: Settings) -> None:
    engine = make_engine(settings.database_url, pool_size=5)
    pool = await open_pool(settings.libpq_url)
    keys = KeyStore(engine, MasterKeys(settings.parsed_master_keys))
    client = await connect_temporal(settings, keys)
    worker = build_worker(client, settings, pool)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling task queue %s at %s", settings.task_queue, settings.temporal_address)
    async with worker:
        await stop.wait()
        log.info("worker shutting down")
    await pool.close()
    await engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run(Settings()))  # type: ignore[call-arg]


if __name__ == "__main__":
    main()
