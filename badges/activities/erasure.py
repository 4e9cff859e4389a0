"""The steps of a member's erasure, each idempotent: running one again after a crash finds its
work done and changes nothing. Each step that changes something writes an audit record in the
same transaction; the records name the erasure's reference, never the member."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from badges.db.erasure import audit_erasure, block_member, delete_member_rows, destroy_keys
from badges.db.keys import KeyStore
from badges.db.members import reachable_members
from badges.domain.identity import consent_workflow_id, erasure_workflow_id, user_badges_workflow_id
from badges.messages.erasure import ErasureRecord, ErasureStep
from badges.temporal import Client, end_workflow, running_member_workflows


async def audit_step(connection: AsyncConnection[Any], step: ErasureStep, action: str, details: dict[str, Any]) -> None:
    await audit_erasure(connection, step.reference, action, details)


async def end_workflows_of_erased(
    engine: AsyncEngine, temporal: Client, keys: KeyStore, signalled: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """After signalling members' badge workflows with signal-with-start: those of `signalled`
    whose erasure began meanwhile (it ran between a check and the signal, in another process,
    while this one still cached the key), with the workflow the signal may have started for
    them ended (the erasure's own sweeps ran before it started) and their key forgotten here. A
    workflow started for an erased member could never write anything: erasure is not undone."""
    erased = set(signalled) - await reachable_members(engine, signalled)
    for member_id in erased:
        keys.forget(str(member_id))
        await end_workflow(temporal, user_badges_workflow_id(member_id), "member erased")
    return erased


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
