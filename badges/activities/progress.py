"""`record_progress`: write a member's progress, awards and outbox rows in one transaction."""

from __future__ import annotations

import uuid

from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel
from temporalio import activity

from badges.db.progress import apply_batch
from badges.domain.rules import Award, ProgressUpdate


class ProgressBatch(BaseModel):
    user_id: uuid.UUID
    batch_seq: int
    progress: list[ProgressUpdate]
    awards: list[Award]


class ProgressActivities:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @activity.defn
    async def record_progress(self, batch: ProgressBatch) -> bool:
        """Apply one batch; returns False when this batch was already applied (a retry)."""
        return await apply_batch(self._pool, batch.user_id, batch.batch_seq, batch.progress, batch.awards)
