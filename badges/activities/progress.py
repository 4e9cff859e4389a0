"""`record_progress`: write a member's progress, awards and outbox rows in one transaction."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from badges.db.badges import AppliedBatch, Award, BadgeProgress
from badges.db.outbox import OUTBOX_CHANNEL, OUTBOX_LOCK_KEY, OutboxEntry
from badges.domain.rules import Award as AwardDecision
from badges.domain.rules import ProgressUpdate


class ProgressBatch(BaseModel):
    user_id: uuid.UUID
    batch_seq: int
    progress: list[ProgressUpdate]
    awards: list[AwardDecision]


class ProgressActivities:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @activity.defn
    async def record_progress(self, batch: ProgressBatch) -> bool:
        """Apply one batch; returns False when this batch was already applied (a retry)."""
        async with self._engine.begin() as connection:
            claimed = await connection.execute(
                insert(AppliedBatch)
                .values(user_id=batch.user_id, batch_seq=batch.batch_seq)
                .on_conflict_do_nothing()
                .returning(AppliedBatch.batch_seq)
            )
            if claimed.first() is None:
                return False

            outbox: list[dict[str, Any]] = []
            for update in batch.progress:
                statement = insert(BadgeProgress).values(
                    user_id=batch.user_id, badge_id=update.badge_id, value=update.value, target=update.target
                )
                await connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=[BadgeProgress.user_id, BadgeProgress.badge_id],
                        set_={
                            "value": statement.excluded.value,
                            "target": statement.excluded.target,
                            "updated_at": text("now()"),
                        },
                    )
                )
                outbox.append(
                    {
                        "user_id": batch.user_id,
                        "kind": "progress",
                        "payload": update.model_dump(mode="json", by_alias=True),
                    }
                )
            for award in batch.awards:
                inserted = await connection.execute(
                    insert(Award)
                    .values(
                        user_id=batch.user_id,
                        badge_id=award.badge_id,
                        instance=award.instance,
                        awarded_at=award.awarded_at,
                    )
                    .on_conflict_do_nothing()
                    .returning(Award.id)
                )
                if inserted.first() is not None:
                    outbox.append(
                        {
                            "user_id": batch.user_id,
                            "kind": "award",
                            "payload": award.model_dump(mode="json", by_alias=True),
                        }
                    )

            if outbox:
                # Held until commit: outbox ids become visible in the order they were taken.
                await connection.execute(select(text(f"pg_advisory_xact_lock({OUTBOX_LOCK_KEY})")))
                await connection.execute(insert(OutboxEntry), outbox)
                await connection.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))
        return True
