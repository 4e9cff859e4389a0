"""Badge progress and awards, the projection of each member's workflow state: the tables, and a
member's batch of progress and awards, written with its outbox rows (and the batch's rewards
and review items) in one transaction.

The batch is sent as one multi-statement script, so one round trip: hand-written on the psycopg
pool, as it runs for every batch of the real-time path (bench/realtime.py). The writes are
idempotent by content; the advisory lock, held to commit, makes outbox ids visible in the order
they were taken. `ProgressWriter` writes the batches that arrive together in one such script, so
they share the lock and the commit. The reads (the badges page, re-evaluation paging) are
SQLAlchemy Core.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool
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

# A later batch wins, even when a value falls (a broken streak) or a definition's new version
# changes the target; only what changed is announced. The same batch written twice (a retried
# activity) announces nothing the second time; a retried workflow task that holds more events
# than its first attempt writes the same batch number with newer values, and those win. A stale
# write from an earlier batch never moves anything back.
WRITE_PROGRESS = """
WITH written AS (
    INSERT INTO badge_progress AS current (user_id, badge_id, value, target, version, batch_seq)
    SELECT {user_id}, r."badgeId", r.value, r.target, coalesce(r.version, 1), {batch_seq}
      FROM jsonb_to_recordset({items}::jsonb) AS r("badgeId" text, value int, target int, version int)
    ON CONFLICT (user_id, badge_id)
    DO UPDATE SET value = excluded.value, target = excluded.target, version = excluded.version,
                  batch_seq = excluded.batch_seq, updated_at = now()
    WHERE excluded.batch_seq >= current.batch_seq
      AND (current.value, current.target, current.version)
          IS DISTINCT FROM (excluded.value, excluded.target, excluded.version)
    RETURNING badge_id
)
INSERT INTO outbox (user_id, kind, payload)
SELECT {user_id}, 'progress', item.payload
  FROM jsonb_array_elements({items}::jsonb) WITH ORDINALITY AS item(payload, n)
  JOIN written ON written.badge_id = item.payload->>'badgeId'
 ORDER BY item.n
"""

WRITE_AWARDS = """
WITH granted AS (
    INSERT INTO awards (user_id, badge_id, instance, version, awarded_at)
    SELECT {user_id}, r."badgeId", r.instance, coalesce(r.version, 1), r."awardedAt"
      FROM jsonb_to_recordset({items}::jsonb) AS r("badgeId" text, instance text, version int, "awardedAt" timestamptz)
    ON CONFLICT (user_id, badge_id, instance) DO NOTHING
    RETURNING badge_id, instance
)
INSERT INTO outbox (user_id, kind, payload)
SELECT {user_id}, 'award', item.payload
  FROM jsonb_array_elements({items}::jsonb) WITH ORDINALITY AS item(payload, n)
  JOIN granted ON granted.badge_id = item.payload->>'badgeId' AND granted.instance = item.payload->>'instance'
 ORDER BY item.n
"""


@dataclass(frozen=True, slots=True)
class MemberBatch:
    """What one batch of a member's workflow announces: its progress and awards."""

    user_id: uuid.UUID
    batch_seq: int
    progress: Sequence[ProgressUpdate]
    awards: Sequence[Award]


def batch_script(
    user_id: uuid.UUID, batch_seq: int, progress: Sequence[ProgressUpdate], awards: Sequence[Award]
) -> sql.Composed:
    """The batch as one multi-statement script: PostgreSQL runs it as a single transaction in
    one round trip."""
    return group_script([MemberBatch(user_id, batch_seq, progress, awards)])


def group_script(batches: Sequence[MemberBatch]) -> sql.Composed:
    """Several members' batches as one script: one transaction, one outbox lock, one wake-up."""
    statements: list[sql.Composable] = [sql.SQL(LOCK_OUTBOX)]
    for batch in batches:
        user = sql.Literal(str(batch.user_id))
        for template, items in ((WRITE_PROGRESS, batch.progress), (WRITE_AWARDS, batch.awards)):
            if items:
                document = json.dumps([item.model_dump(mode="json", by_alias=True) for item in items])
                statements.append(
                    sql.SQL(template).format(
                        user_id=user, batch_seq=sql.Literal(batch.batch_seq), items=sql.Literal(document)
                    )
                )
    statements.append(sql.SQL(f"NOTIFY {OUTBOX_CHANNEL}"))
    return sql.SQL(";\n").join(statements)


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
        await connection.execute(batch_script(user_id, batch_seq, progress, awards))


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
        if progress or awards:
            await connection.execute(batch_script(user_id, batch_seq, progress, awards))


# The most batches one transaction writes: a few hundred kilobytes of script at most.
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
    await connection.execute(group_script(batches))  # one script: one transaction, one round trip
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
