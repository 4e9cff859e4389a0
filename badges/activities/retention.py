"""`purge_expired`: apply the retention rules and audit what they deleted, in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from badges.db.audit import append_audit
from badges.db.catalogue import load_catalogue
from badges.db.retention import bank_retention, purge


class RetentionActivities:
    def __init__(self, pool: AsyncConnectionPool, engine: AsyncEngine) -> None:
        self._pool = pool
        self._engine = engine

    @activity.defn
    async def purge_expired(self) -> dict[str, int]:
        _, catalogue = await load_catalogue(self._engine)
        async with self._pool.connection() as connection, connection.transaction():
            deleted = await purge(connection, datetime.now(UTC), bank_retention(catalogue))
            await append_audit(
                connection,
                actor="system",
                actor_role="system",
                action="retention.purge",
                subject=None,
                resource="retention",
                purpose="data retention policy",
                details={"deleted": deleted},
            )
        return deleted
