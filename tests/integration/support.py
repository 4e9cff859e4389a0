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
from badges.db.erasure import block_member, delete_member_rows, destroy_keys
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


async def erase_in_database(pool: AsyncConnectionPool, member: uuid.UUID) -> None:
    """A member's erasure as the database sees it, at once, as another process would run it: the
    subject refused, every row of theirs deleted, their data key destroyed."""
    async with pool.connection() as connection, connection.transaction():
        await block_member(connection, member)
        await delete_member_rows(connection, member)
        await destroy_keys(connection, str(member))
