"""The review queue: what a person decides before it counts. Items of two kinds:

- **held bursts** (`held_burst`): implausible bursts of events held back from awarding. An item
  holds at most a bounded number of events (the member's workflow opens a new item past them,
  `domain/batch.py`); each held event is a row of its own (`review_events`), sealed with the
  member's key and appended, never rewritten, and handed back to the workflow in bounded pages
  when a reviewer decides.
- **financial patterns** (`financial`): what a behaviour evaluation found in a member's bank data
  that would earn a badge for money not saved (`badges/insights/round_trips.py`). One item per
  pattern, named by the pattern's own stable key, written once however often it is found again;
  its details sealed with the member's key (`sealed`). The reviewer's decision is read by the
  member's next evaluation (`cleared_patterns`): approved counts the money, rejected keeps it out.

The writes and the page reads are hand-written on the psycopg pool (`record_progress` writes
items on the real-time path, in its batch's transaction; the behaviour evaluation writes and
reads patterns beside its other reads); the queue's listings and decisions are SQLAlchemy Core.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.db.keys import KeyStore

HELD_BURST = "held_burst"
FINANCIAL = "financial"


class ReviewItem(Base):
    __tablename__ = "review_queue"

    review_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(300))
    event_count: Mapped[int] = mapped_column(Integer)
    event_ids: Mapped[list[Any]] = mapped_column(JSONB)  # in the order they were held
    status: Mapped[str] = mapped_column(String(16), server_default="pending")  # pending | approved | rejected
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), server_default=HELD_BURST)  # held_burst | financial
    # A financial pattern's details as JSON, sealed with the member's key (`KeyStore.seal`).
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
        CheckConstraint("kind IN ('held_burst', 'financial')", name="kind"),
        CheckConstraint("kind <> 'financial' OR sealed IS NOT NULL", name="financial_sealed"),
        Index("ix_review_queue_status_created_at", "status", "created_at"),
    )


class ReviewEvent(Base):
    """One held event of a review item, in the order it was held (`id`)."""

    __tablename__ = "review_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    review_id: Mapped[str] = mapped_column(ForeignKey("review_queue.review_id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(Text)
    # The BadgeEvent as JSON, sealed with the member's key (`KeyStore.seal`).
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Events held before they were sealed (migration 0009 moved them here as they were stored).
    plain: Mapped[Any | None] = mapped_column(JSONB)

    __table_args__ = (
        UniqueConstraint("review_id", "event_id"),
        Index("ix_review_events_review_id_id", "review_id", "id"),
        CheckConstraint("(sealed IS NULL) <> (plain IS NULL)", name="sealed_or_plain"),
    )


@dataclass(frozen=True, slots=True)
class HeldEvents:
    """Events a batch adds to a review item (opening it if new), each `(event id, sealed JSON)`."""

    review_id: str
    event_type: str
    reason: str
    events: Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Resolution:
    review_id: str
    approved: bool
    resolved_by: str


OPEN_ITEM = """
INSERT INTO review_queue AS item (review_id, user_id, event_type, reason, event_count, event_ids)
VALUES (%(review_id)s, %(user_id)s, %(event_type)s, %(reason)s, 0, '[]'::jsonb)
ON CONFLICT (review_id) DO UPDATE SET reason = excluded.reason
 WHERE item.status = 'pending' AND item.user_id = excluded.user_id
"""

# Appends only events the item does not hold yet (a retried batch adds nothing twice), in order,
# and only to an item still pending; the item's count and ids follow what was added.
ADD_EVENTS = """
WITH added AS (
    INSERT INTO review_events (review_id, user_id, event_id, sealed)
    SELECT %(review_id)s::varchar, %(user_id)s::uuid, new.event_id, new.sealed
      FROM unnest(%(ids)s::text[], %(sealed)s::bytea[]) WITH ORDINALITY AS new(event_id, sealed, n)
     WHERE EXISTS (SELECT 1 FROM review_queue
                    WHERE review_id = %(review_id)s::varchar AND user_id = %(user_id)s::uuid AND status = 'pending')
     ORDER BY new.n
    ON CONFLICT (review_id, event_id) DO NOTHING
    RETURNING id, event_id
)
UPDATE review_queue
   SET event_ids = event_ids || (SELECT coalesce(jsonb_agg(to_jsonb(event_id) ORDER BY id), '[]'::jsonb) FROM added),
       event_count = event_count + (SELECT count(*) FROM added)
 WHERE review_id = %(review_id)s::varchar AND user_id = %(user_id)s::uuid AND status = 'pending'
"""


async def record_reviews(
    connection: AsyncConnection[Any],
    user_id: uuid.UUID,
    held: Sequence[HeldEvents],
    resolved: Sequence[Resolution],
) -> None:
    """In the caller's transaction: add held events to their review items (opening new ones) and
    close resolved items. Idempotent: a retry adds no event twice and reopens nothing."""
    for item in held:
        params: dict[str, Any] = {
            "review_id": item.review_id,
            "user_id": user_id,
            "event_type": item.event_type,
            "reason": item.reason[:300],
        }
        await connection.execute(OPEN_ITEM, params)
        ids = [event_id for event_id, _ in item.events]
        await connection.execute(ADD_EVENTS, {**params, "ids": ids, "sealed": [sealed for _, sealed in item.events]})
    for decision in resolved:
        await connection.execute(
            "UPDATE review_queue SET status = %s, resolved_at = now(), resolved_by = %s"
            " WHERE review_id = %s AND user_id = %s AND status = 'pending'",
            ("approved" if decision.approved else "rejected", decision.resolved_by, decision.review_id, user_id),
        )


@dataclass(frozen=True, slots=True)
class HeldEventsPage:
    events: list[str]  # BadgeEvent JSON, in the order they were held
    next_after: int | None  # pass as `after` for the next page; None when this page was the last


async def held_events_page(
    pool: AsyncConnectionPool,
    keys: KeyStore,
    user_id: uuid.UUID,
    review_id: str,
    after: int,
    max_events: int,
    max_bytes: int,
) -> HeldEventsPage:
    """A page of a member's review item's held events after position `after`: at most
    `max_events`, and at most `max_bytes` of JSON unless one event alone is larger."""
    async with pool.connection() as connection:
        rows = await (
            await connection.execute(
                "SELECT id, sealed, plain::text FROM review_events"
                " WHERE review_id = %s AND user_id = %s AND id > %s ORDER BY id LIMIT %s",
                (review_id, user_id, after, max_events + 1),
            )
        ).fetchall()
    events: list[str] = []
    size = 0
    last = after
    for position, sealed, plain in rows[:max_events]:
        text = (await keys.unseal(bytes(sealed))).decode() if sealed is not None else plain
        if events and size + len(text.encode()) > max_bytes:
            return HeldEventsPage(events, last)
        events.append(text)
        size += len(text.encode())
        last = position
    return HeldEventsPage(events, last if len(rows) > max_events else None)


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    review_id: str
    user_id: uuid.UUID
    event_type: str
    reason: str
    event_count: int
    event_ids: list[Any]
    status: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    kind: str = HELD_BURST
    sealed: bytes | None = None


async def review_items(
    engine: AsyncEngine, status: str | None, limit: int, user_id: uuid.UUID | None = None
) -> list[ReviewRecord]:
    query = select(ReviewItem.__table__).order_by(ReviewItem.created_at, ReviewItem.review_id).limit(limit)
    if status is not None:
        query = query.where(ReviewItem.status == status)
    if user_id is not None:
        query = query.where(ReviewItem.user_id == user_id)
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


# ---- Financial patterns -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FinancialPattern:
    """A pattern found in a member's bank data, for a person to decide."""

    pattern: str  # what it is (`savings_round_trip`): the item's `event_type`
    key: str  # the pattern's own stable name (a digest of its transactions)
    reason: str  # our words, without the member's amounts or days: stored in plaintext
    detail: dict[str, Any]  # amounts, days, how the money moved: sealed with the member's key
    transactions: int  # how many of the member's transactions it is made of


def financial_review_id(user_id: uuid.UUID, pattern: FinancialPattern) -> str:
    """The item's id: the same pattern of the same member is the same item, at every evaluation."""
    return f"{pattern.pattern.replace('_', '-')}:{user_id}:{pattern.key}"


def pattern_key(review_id: str) -> str:
    return review_id.rpartition(":")[2]


OPEN_PATTERN = """
INSERT INTO review_queue (review_id, user_id, kind, event_type, reason, event_count, event_ids, sealed)
SELECT %(review_id)s, %(user_id)s, 'financial', %(event_type)s, %(reason)s, %(count)s, '[]'::jsonb, %(sealed)s
 WHERE EXISTS (SELECT 1 FROM members WHERE id = %(user_id)s)
ON CONFLICT (review_id) DO NOTHING
"""


async def record_patterns(
    pool: AsyncConnectionPool, keys: KeyStore, user_id: uuid.UUID, patterns: Sequence[FinancialPattern]
) -> int:
    """Put on the queue the patterns it does not hold yet (whatever their status: a pattern is
    reported once, and a decided one stays decided). Idempotent: a retried evaluation adds
    nothing twice. Returns how many were added."""
    by_id = {financial_review_id(user_id, pattern): pattern for pattern in patterns}
    if not by_id:
        return 0
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT review_id FROM review_queue WHERE review_id = ANY(%s)", (list(by_id),)
        )
        held = {row[0] for row in await cursor.fetchall()}
    new = [
        {
            "review_id": review_id,
            "user_id": user_id,
            "event_type": pattern.pattern,
            "reason": pattern.reason[:300],
            "count": pattern.transactions,
            "sealed": await keys.seal(str(user_id), json.dumps(pattern.detail, sort_keys=True).encode()),
        }
        for review_id, pattern in by_id.items()
        if review_id not in held
    ]
    if not new:
        return 0
    async with pool.connection() as connection, connection.transaction(), connection.cursor() as cursor:
        await cursor.executemany(OPEN_PATTERN, new)
    return len(new)


async def cleared_patterns(pool: AsyncConnectionPool, user_id: uuid.UUID) -> set[str]:
    """The keys of the member's patterns a reviewer found not suspicious (approved)."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT review_id FROM review_queue WHERE user_id = %s AND kind = 'financial' AND status = 'approved'",
            (user_id,),
        )
        return {pattern_key(row[0]) for row in await cursor.fetchall()}


async def decide_pattern(engine: AsyncEngine, review_id: str, approved: bool, resolved_by: str) -> ReviewRecord | None:
    """Record a reviewer's decision on a pending financial pattern; None when it is not one (or
    was decided already)."""
    query = (
        update(ReviewItem)
        .where(ReviewItem.review_id == review_id, ReviewItem.kind == FINANCIAL, ReviewItem.status == "pending")
        .values(status="approved" if approved else "rejected", resolved_at=func.now(), resolved_by=resolved_by)
        .returning(*ReviewItem.__table__.columns)
    )
    async with engine.begin() as connection:
        row = (await connection.execute(query)).first()
    return None if row is None else ReviewRecord(**row._mapping)


async def pattern_detail(keys: KeyStore, item: ReviewRecord) -> dict[str, Any] | None:
    """A financial pattern's details, opened (None for a held burst)."""
    if item.sealed is None:
        return None
    detail: dict[str, Any] = json.loads(await keys.unseal(bytes(item.sealed)))
    return detail
