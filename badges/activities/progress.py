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
    batch_seq: int  # the workflow's count of batches; for tracing in the Web UI
    progress: list[ProgressUpdate]
    awards: list[Award]


class ProgressActivities:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @activity.defn
    async def record_progress(self, batch: ProgressBatch) -> None:
        """Apply one batch; a retry, or a batch repeating an earlier one's values, changes nothing."""
        await apply_batch(self._pool, batch.user_id, batch.progress, batch.awards)
