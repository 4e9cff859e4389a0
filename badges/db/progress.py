"""Badge progress and awards, the projection of each member's workflow state: the tables, and a
member's batch of progress and awards, written with its outbox rows (and the batch's rewards
and review items) in one transaction.

The batch is sent as one pipeline of prepared statements, so one round trip: hand-written on the
psycopg pool, as it runs for every batch of the real-time path (bench/realtime.py). The writes are
idempotent by content; the advisory lock, held to commit, makes outbox ids visible in the order
they were taken. `ProgressWriter` writes the batches that arrive together in one such
transaction, each statement covering all of them, so they share the lock and the commit. The
reads (the badges page, re-evaluation paging) are SQLAlchemy Core.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import TypeAdapter
from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, UniqueConstraint, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.db.group_commit import GroupCommit, GroupCommitStats
from badges.db.outbox import OUTBOX_CHANNEL, OUTBOX_LOCK_KEY
from badges.db.reviews import HeldEvents, Resolution, record_reviews
from badges.db.rewards import RewardClaim, grant_rewards
from badges.domain.rules import Award, ProgressUpdate


class BadgeProgress(Base):
    __tablename__ = "badge_progress"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    badge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    target: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, server_default="1")  # of the definition it counts under
    # The member workflow's batch that wrote it: a later batch wins even when the value falls
    # (a broken streak), a repeated write of the same batch announces nothing.
    batch_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AwardRow(Base):
    __tablename__ = "awards"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    badge_id: Mapped[str] = mapped_column(String(64))
    instance: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, server_default="1")  # of the definition it was earned under
    awarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("user_id", "badge_id", "instance"),)


LOCK_OUTBOX = f"SELECT pg_advisory_xact_lock({OUTBOX_LOCK_KEY})"
NOTIFY_OUTBOX = f"NOTIFY {OUTBOX_CHANNEL}"

# Each statement writes every member's batch of a group (`%(batches)s`: a JSON array of
# `{"userId", "batchSeq", "items"}`, `items` as the stream shows them), so a group is the same
# few prepared statements however many members it holds; outbox rows go in batch then item order.
BATCH_ITEMS = """
WITH batch AS (
    SELECT (b.value->>'userId')::uuid AS user_id, (b.value->>'batchSeq')::bigint AS batch_seq,
           b.value->'items' AS items, b.n
      FROM jsonb_array_elements(%(batches)s::jsonb) WITH ORDINALITY AS b(value, n)
),
item AS (
    SELECT batch.user_id, batch.batch_seq, batch.n AS batch_n, i.payload, i.n
      FROM batch CROSS JOIN LATERAL jsonb_array_elements(batch.items) WITH ORDINALITY AS i(payload, n)
)"""

# A later batch wins, even when a value falls (a broken streak) or a definition's new version
# changes the target; only what changed is announced. The same batch written twice (a retried
# activity) announces nothing the second time; a retried workflow task that holds more events
# than its first attempt writes the same batch number with newer values, and those win. A stale
# write from an earlier batch never moves anything back.
WRITE_PROGRESS = f"""{BATCH_ITEMS},
written AS (
    INSERT INTO badge_progress AS current (user_id, badge_id, value, target, version, batch_seq)
    SELECT item.user_id, item.payload->>'badgeId', (item.payload->>'value')::int, (item.payload->>'target')::int,
           coalesce((item.payload->>'version')::int, 1), item.batch_seq
      FROM item
    ON CONFLICT (user_id, badge_id)
    DO UPDATE SET value = excluded.value, target = excluded.target, version = excluded.version,
                  batch_seq = excluded.batch_seq, updated_at = now()
    WHERE excluded.batch_seq >= current.batch_seq
      AND (current.value, current.target, current.version)
          IS DISTINCT FROM (excluded.value, excluded.target, excluded.version)
    RETURNING user_id, badge_id
)
INSERT INTO outbox (user_id, kind, payload)
SELECT item.user_id, 'progress', item.payload
  FROM item JOIN written ON written.user_id = item.user_id AND written.badge_id = item.payload->>'badgeId'
 ORDER BY item.batch_n, item.n
"""

WRITE_AWARDS = f"""{BATCH_ITEMS},
granted AS (
    INSERT INTO awards (user_id, badge_id, instance, version, awarded_at)
    SELECT item.user_id, item.payload->>'badgeId', item.payload->>'instance',
           coalesce((item.payload->>'version')::int, 1), (item.payload->>'awardedAt')::timestamptz
      FROM item
    ON CONFLICT (user_id, badge_id, instance) DO NOTHING
    RETURNING user_id, badge_id, instance
)
INSERT INTO outbox (user_id, kind, payload)
SELECT item.user_id, 'award', item.payload
  FROM item JOIN granted ON granted.user_id = item.user_id AND granted.badge_id = item.payload->>'badgeId'
                        AND granted.instance = item.payload->>'instance'
 ORDER BY item.batch_n, item.n
"""

PROGRESS_JSON: TypeAdapter[Sequence[ProgressUpdate]] = TypeAdapter(Sequence[ProgressUpdate])
AWARDS_JSON: TypeAdapter[Sequence[Award]] = TypeAdapter(Sequence[Award])


@dataclass(frozen=True, slots=True)
class MemberBatch:
    """What one batch of a member's workflow announces: its progress and awards."""

    user_id: uuid.UUID
    batch_seq: int
    progress: Sequence[ProgressUpdate]
    awards: Sequence[Award]


def batches_document(batches: Sequence[MemberBatch], kind: str) -> str | None:
    """The `%(batches)s` of `WRITE_PROGRESS` (`kind` "progress") or `WRITE_AWARDS` ("awards"):
    the batches that hold any, items as the stream shows them (pydantic's JSON, camelCase); None
    when none does."""
    parts = []
    for batch in batches:
        if kind == "progress":
            if not batch.progress:
                continue
            items = PROGRESS_JSON.dump_json(batch.progress, by_alias=True)
        else:
            if not batch.awards:
                continue
            items = AWARDS_JSON.dump_json(batch.awards, by_alias=True)
        # A UUID's text and an integer need no escaping in JSON.
        parts.append(
            b'{"userId":"%s","batchSeq":%d,"items":%s}' % (str(batch.user_id).encode(), batch.batch_seq, items)
        )
    return (b"[" + b",".join(parts) + b"]").decode() if parts else None


async def write_batches(connection: AsyncConnection[Any], batches: Sequence[MemberBatch]) -> None:
    """Members' batches inside the caller's transaction: the outbox lock first (held to the
    commit, so outbox ids become visible in order), then one statement per kind for them all,
    then the tailers' wake-up (sent at commit)."""
    progress = batches_document(batches, "progress")
    awards = batches_document(batches, "awards")
    if progress is None and awards is None:
        return
    await connection.execute(LOCK_OUTBOX)
    if progress is not None:
        await connection.execute(WRITE_PROGRESS, {"batches": progress})
    if awards is not None:
        await connection.execute(WRITE_AWARDS, {"batches": awards})
    await connection.execute(NOTIFY_OUTBOX)


async def write_group(connection: AsyncConnection[Any], batches: Sequence[MemberBatch]) -> None:
    """Members' batches in a transaction of their own (on an autocommit connection), sent as one
    pipeline: one round trip, and statements psycopg prepares once they repeat, so neither side
    parses or plans them again for each batch, as it did for a script of literals."""
    async with connection.pipeline(), connection.transaction():
        await write_batches(connection, batches)


async def write_progress_batch(
    pool: AsyncConnectionPool,
    user_id: uuid.UUID,
    batch_seq: int,
    progress: Sequence[ProgressUpdate],
    awards: Sequence[Award],
) -> None:
    """Write one batch. Idempotent by content: a value already reached and an award already held
    are neither written nor announced again."""
    if not progress and not awards:
        return
    async with pool.connection() as connection:
        await write_group(connection, [MemberBatch(user_id, batch_seq, progress, awards)])


async def write_member_batch(
    pool: AsyncConnectionPool,
    user_id: uuid.UUID,
    batch_seq: int,
    progress: Sequence[ProgressUpdate],
    awards: Sequence[Award],
    claims: Sequence[RewardClaim] = (),
    held: Sequence[HeldEvents] = (),
    resolved: Sequence[Resolution] = (),
) -> None:
    """Everything one batch decided, written whole or not at all: a batch the database refuses
    (a held event it cannot store) leaves nothing behind, so the member's workflow can set it
    aside and go on from the state before it. Progress and awards alone (nearly every batch) are
    one round trip (`write_progress_batch`); with rewards or review items, one transaction that
    takes the outbox lock last, so it is held only to the commit."""
    if not claims and not held and not resolved:
        await write_progress_batch(pool, user_id, batch_seq, progress, awards)
        return
    async with pool.connection() as connection, connection.transaction():
        await record_reviews(connection, user_id, held, resolved)
        await grant_rewards(connection, user_id, claims)
        await write_batches(connection, [MemberBatch(user_id, batch_seq, progress, awards)])


# The most batches one transaction writes: a few hundred kilobytes of statement at most.
MAX_GROUP = 64


class ProgressWriter:
    """Writes members' batches as `write_member_batch` does, with the batches of progress and
    awards alone (nearly all of them) that arrive while a write is under way written together,
    in one transaction, when it ends (`GroupCommit`).

    Every such write holds the outbox lock to its commit, and waiting for the commit to reach
    the disk is most of that time, so only one write at a time proceeds however many connections
    wait. One transaction per batch kept the lock busy 60 to 75 % of the time at 100 events/s on the
    benchmark's machine, and any slower commit queued every member's workflow task behind it
    (bench/RESULTS.md). Written together, the batches that queued share one lock and one commit."""

    def __init__(self, pool: AsyncConnectionPool, *, max_group: int = MAX_GROUP) -> None:
        self._pool = pool
        self._group: GroupCommit[MemberBatch, None] = GroupCommit(
            pool, _write_batches, max_group=max_group, name="progress-writer"
        )
        # Member events in the batches written (a metrics thread reads it).
        self.events_applied = 0

    def stats(self) -> GroupCommitStats:
        """Read only (a metrics thread may call it)."""
        return self._group.stats()

    async def write(
        self,
        user_id: uuid.UUID,
        batch_seq: int,
        progress: Sequence[ProgressUpdate],
        awards: Sequence[Award],
        claims: Sequence[RewardClaim] = (),
        held: Sequence[HeldEvents] = (),
        resolved: Sequence[Resolution] = (),
        *,
        events: int = 0,
    ) -> None:
        """Everything one batch decided, whole or not at all (`write_member_batch`); `events`:
        how many member events it decided, counted once it is written."""
        if claims or held or resolved:
            await write_member_batch(self._pool, user_id, batch_seq, progress, awards, claims, held, resolved)
        elif progress or awards:
            await self._group.submit(MemberBatch(user_id, batch_seq, progress, awards))
        self.events_applied += events


async def _write_batches(connection: AsyncConnection[Any], batches: Sequence[MemberBatch]) -> list[None]:
    await write_group(connection, batches)  # one transaction, one round trip
    return [None] * len(batches)


# --- reads (the member's badges page, re-evaluation) ------------------------------------------


@dataclass(frozen=True, slots=True)
class ProgressRecord:
    badge_id: str
    value: int
    target: int


@dataclass(frozen=True, slots=True)
class AwardRecord:
    badge_id: str
    instance: str
    version: int
    awarded_at: datetime


async def member_badges(engine: AsyncEngine, user_id: uuid.UUID) -> tuple[list[ProgressRecord], list[AwardRecord]]:
    """The member's progress rows, and their awards in the order they were earned."""
    async with engine.connect() as connection:
        progress = [
            ProgressRecord(row.badge_id, row.value, row.target)
            for row in await connection.execute(
                select(BadgeProgress.badge_id, BadgeProgress.value, BadgeProgress.target).where(
                    BadgeProgress.user_id == user_id
                )
            )
        ]
        awards = [
            AwardRecord(row.badge_id, row.instance, row.version, row.awarded_at)
            for row in await connection.execute(
                select(AwardRow.badge_id, AwardRow.instance, AwardRow.version, AwardRow.awarded_at)
                .where(AwardRow.user_id == user_id)
                .order_by(AwardRow.awarded_at, AwardRow.id)
            )
        ]
    return progress, awards


async def members_with_progress(
    engine: AsyncEngine, badge_id: str, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """A page of the members with progress on a badge, in id order after `after`."""
    query = select(BadgeProgress.user_id).where(BadgeProgress.badge_id == badge_id)
    if after is not None:
        query = query.where(BadgeProgress.user_id > after)
    async with engine.connect() as connection:
        return list(await connection.scalars(query.order_by(BadgeProgress.user_id).limit(limit)))
