"""The review queue: implausible bursts of events held back from awarding until a person decides.

`record_reviews` is hand-written on the psycopg pool (`record_progress` writes it on the real-time
path); reads are SQLAlchemy Core."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, func, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base


class ReviewItem(Base):
    __tablename__ = "review_queue"

    review_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(300))
    event_count: Mapped[int] = mapped_column(Integer)
    event_ids: Mapped[list[Any]] = mapped_column(JSONB)
    # The held events themselves (BadgeEvent JSON), handed back to the workflow on approval.
    events: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")  # pending | approved | rejected
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
        Index("ix_review_queue_status_created_at", "status", "created_at"),
    )


async def record_reviews(
    pool: AsyncConnectionPool,
    user_id: uuid.UUID,
    held: Sequence[tuple[str, str, str, list[dict[str, Any]]]],
    resolved: Sequence[tuple[str, bool, str]],
) -> None:
    """Open review items for held bursts `(review_id, event_type, reason, events)`, or add to the
    one still open (a burst spans several batches), and close resolved ones `(review_id, approved,
    resolved_by)`. Idempotent: a retry adds no event twice and reopens nothing."""
    if not held and not resolved:
        return
    async with pool.connection() as connection, connection.transaction():
        for review_id, event_type, reason, events in held:
            ids = [event["id"] for event in events]
            await connection.execute(
                """
                INSERT INTO review_queue AS item
                       (review_id, user_id, event_type, reason, event_count, event_ids, events)
                VALUES (%(review_id)s, %(user_id)s, %(event_type)s, %(reason)s, %(count)s, %(ids)s, %(events)s)
                ON CONFLICT (review_id) DO UPDATE SET
                    reason = excluded.reason,
                    event_ids = item.event_ids || (SELECT coalesce(jsonb_agg(new.id), '[]'::jsonb)
                                                     FROM jsonb_array_elements(excluded.event_ids) AS new(id)
                                                    WHERE NOT item.event_ids @> jsonb_build_array(new.id)),
                    events = item.events || (SELECT coalesce(jsonb_agg(new.event), '[]'::jsonb)
                                               FROM jsonb_array_elements(excluded.events) AS new(event)
                                              WHERE NOT item.event_ids @> jsonb_build_array(new.event->'id')),
                    event_count = jsonb_array_length(item.event_ids || (
                        SELECT coalesce(jsonb_agg(new.id), '[]'::jsonb)
                          FROM jsonb_array_elements(excluded.event_ids) AS new(id)
                         WHERE NOT item.event_ids @> jsonb_build_array(new.id)))
                WHERE item.status = 'pending'
                """,
                {
                    "review_id": review_id,
                    "user_id": user_id,
                    "event_type": event_type,
                    "reason": reason[:300],
                    "count": len(ids),
                    "ids": Jsonb(ids),
                    "events": Jsonb(events),
                },
            )
        for review_id, approved, resolved_by in resolved:
            await connection.execute(
                "UPDATE review_queue SET status = %s, resolved_at = now(), resolved_by = %s"
                " WHERE review_id = %s AND user_id = %s AND status = 'pending'",
                ("approved" if approved else "rejected", resolved_by, review_id, user_id),
            )


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    review_id: str
    user_id: uuid.UUID
    event_type: str
    reason: str
    event_count: int
    event_ids: list[Any]
    events: list[Any]  # BadgeEvent JSON
    status: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None


async def review_items(engine: AsyncEngine, status: str | None, limit: int) -> list[ReviewRecord]:
    query = select(ReviewItem.__table__).order_by(ReviewItem.created_at, ReviewItem.review_id).limit(limit)
    if status is not None:
        query = query.where(ReviewItem.status == status)
    async with engine.connect() as connection:
        return [ReviewRecord(**row._mapping) for row in await connection.execute(query)]


async def review_item(engine: AsyncEngine, review_id: str) -> ReviewRecord | None:
    async with engine.connect() as connection:
        row = (await connection.execute(select(ReviewItem.__table__).where(ReviewItem.review_id == review_id))).first()
    return None if row is None else ReviewRecord(**row._mapping)


async def pending_reviews(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(ReviewItem).where(ReviewItem.status == "pending")
        )
        return int(count or 0)
