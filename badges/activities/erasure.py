"""The steps of a member's erasure, each idempotent: running one again after a crash finds its
work done and changes nothing. Each step that changes something writes an audit record in the
same transaction; the records name the erasure's reference, never the member."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from badges.db.erasure import audit_erasure, block_member, delete_member_rows, destroy_keys
from badges.db.keys import KeyStore
from badges.domain.identity import consent_workflow_id, erasure_workflow_id, user_badges_workflow_id
from badges.messages.erasure import ErasureRecord, ErasureStep
from badges.temporal import Client, end_workflow, running_member_workflows


async def audit_step(connection: AsyncConnection[Any], step: ErasureStep, action: str, details: dict[str, Any]) -> None:
    await audit_erasure(connection, step.reference, action, details)


class ErasureActivities:
    def __init__(self, pool: AsyncConnectionPool, client: Client, keys: KeyStore) -> None:
        self._pool = pool
        self._client = client
        self._keys = keys

    @activity.defn
    async def block_member(self, step: ErasureStep) -> None:
        """Refuse the member's tokens from now on (every API process forgets them at once)."""
        async with self._pool.connection() as connection, connection.transaction():
            if await block_member(connection, step.user_id):
                await audit_step(connection, step, "blocked", {})

    @activity.defn
    async def end_member_workflows(self, step: ErasureStep) -> int:
        """Terminate every running workflow of the member but the erasure itself. Returns how many."""
        ids = {user_badges_workflow_id(step.user_id), consent_workflow_id(step.user_id)}
        ids |= await running_member_workflows(self._client, step.user_id)
        ids.discard(erasure_workflow_id(step.user_id))
        ended = 0
        for workflow_id in sorted(ids):
            activity.heartbeat(workflow_id)
            if await end_workflow(self._client, workflow_id, "member erased"):
                ended += 1
        if ended:
            async with self._pool.connection() as connection, connection.transaction():
                await audit_step(connection, step, "workflows_ended", {"workflows": ended})
        return ended

    @activity.defn
    async def delete_member_rows(self, step: ErasureStep) -> dict[str, int]:
        """Delete the member's rows in every table (counts, by table, go to the audit record)."""
        async with self._pool.connection() as connection, connection.transaction():
            counts = await delete_member_rows(connection, step.user_id)
            if counts.get("members"):
                await audit_step(connection, step, "rows_deleted", {"rows": counts})
        return counts

    @activity.defn
    async def destroy_member_key(self, step: ErasureStep) -> int:
        """Destroy the member's data keys: last, so nothing written before stays readable."""
        async with self._pool.connection() as connection, connection.transaction():
            destroyed = await destroy_keys(connection, str(step.user_id))
            if destroyed:
                await audit_step(connection, step, "key_destroyed", {"keys": destroyed})
        # This process forgets the key now; other workers when the erasure is announced
        # (`forget_erased_keys`), or at the latest within BADGES_KEY_CACHE_SECONDS.
        self._keys.forget(str(step.user_id))
        return destroyed

    @activity.defn
    async def record_erasure_step(self, record: ErasureRecord) -> None:
        async with self._pool.connection() as connection, connection.transaction():
            await audit_step(connection, record, record.action, dict(record.details))
