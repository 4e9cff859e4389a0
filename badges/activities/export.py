"""The steps of a member's data export: plan the sections, seal each one, mark it finished."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from badges.db.exports import begin_export, finish_export, store_part
from badges.db.keys import KeyStore
from badges.messages.export import ExportRequest, ExportSection


class ExportActivities:
    def __init__(self, pool: AsyncConnectionPool, keys: KeyStore) -> None:
        self._pool = pool
        self._keys = keys

    @activity.defn
    async def begin_export(self, request: ExportRequest) -> list[str]:
        async with self._pool.connection() as connection, connection.transaction():
            return await begin_export(connection, request.export_id, request.user_id)

    @activity.defn
    async def export_section(self, request: ExportSection) -> int:
        """Seal one section of the export (one query: a consistent snapshot of that table); returns
        its row count. Idempotent: a retry replaces the part."""
        async with self._pool.connection() as connection, connection.transaction():
            return await store_part(connection, self._keys, request.export_id, request.user_id, request.section)

    @activity.defn
    async def finish_export(self, request: ExportRequest) -> None:
        async with self._pool.connection() as connection, connection.transaction():
            await finish_export(connection, request.export_id)
