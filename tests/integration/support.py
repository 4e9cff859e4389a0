"""The project's whole worker (its activities on the real PostgreSQL) against the time-skipping server,
on a task queue of its own: for integration tests of a workflow with everything it does."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from badges.activities.webhooks import make_webhook_client
from badges.config import Settings
from badges.db.keys import KeyStore
from badges.workers.main import build_workers


@asynccontextmanager
async def running_worker(
    env: WorkflowEnvironment,
    settings: Settings,
    pool: AsyncConnectionPool,
    engine: AsyncEngine,
    keys: KeyStore,
    **overrides: Any,
) -> AsyncIterator[str]:
    """The project's worker against `env` (settings changed by `overrides`); yields its task queue."""
    task_queue = f"tq-{uuid.uuid4()}"
    worker_settings = settings.model_copy(update={"task_queue": task_queue, **overrides})
    async with (
        make_webhook_client() as http,
        build_workers(env.client, worker_settings, pool, engine=engine, keys=keys, http=http, sandboxed=True),
    ):
        yield task_queue
