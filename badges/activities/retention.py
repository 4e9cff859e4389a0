"""`purge_expired`: apply the retention rules and audit what they deleted, in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from badges.db.audit import append_audit
from badges.db.retention import purge


class RetentionActivities:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @activity.defn
    async def purge_expired(self) -> dict[str, int]:
        async with self._pool.connection() as connection, connection.transaction():
            deleted = await purge(connection, datetime.now(UTC))
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
