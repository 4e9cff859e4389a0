"""Rate-limit counters shared by every API process: one row per bucket (what is limited, for whom)
and counting window, so a limit holds however many replicas serve the requests.

Hand-written on the psycopg pool: a check is on the event path (one statement per event, measured
by bench/realtime.py), and the audit of member reads takes one inside its own transaction. The
table is UNLOGGED: counters need no crash safety (after a crash PostgreSQL empties it, and every
limit starts afresh), and skipping the write-ahead log keeps the per-request statement cheap.
Rows are swept once their window can no longer count (`sweep`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base

MAX_BUCKET_LENGTH = 255


class RateLimitWindow(Base):
    __tablename__ = "rate_limit_windows"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    bucket: Mapped[str] = mapped_column(String(MAX_BUCKET_LENGTH), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix seconds
    hits: Mapped[int] = mapped_column(Integer)  # hits allowed in this window (refused ones are not counted)
    allowed: Mapped[bool] = mapped_column(Boolean)  # whether the latest hit was allowed
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


# One statement, atomic however many processes hit the same bucket: the row for the current window
# is locked by the upsert, and the decision is taken on its latest count (`w.hits` in SET is the
# locked row's value before this update). The previous window is over, so its count is only read.
# A refused hit leaves the count as it was: a caller that keeps trying is not locked out longer.
# In two parts, so a statement that does more with the decision (`db/receipts.py`'s claim of an
# event id) counts the hit the same way: `PREVIOUS_WINDOW` is a CTE, `COUNT_HIT` the upsert.
PREVIOUS_WINDOW = """
previous AS (
    SELECT coalesce((SELECT hits FROM rate_limit_windows
                      WHERE bucket = %(bucket)s AND window_start = %(previous_start)s), 0) AS hits
)"""
COUNT_HIT = """
INSERT INTO rate_limit_windows AS w (bucket, window_start, hits, allowed, expires_at)
SELECT %(bucket)s, %(start)s,
       CASE WHEN previous.hits * %(weight)s + 1 <= %(amount)s THEN 1 ELSE 0 END,
       previous.hits * %(weight)s + 1 <= %(amount)s,
       %(expires_at)s
  FROM previous
ON CONFLICT (bucket, window_start) DO UPDATE
   SET hits = w.hits + CASE WHEN (SELECT hits FROM previous) * %(weight)s + w.hits + 1 <= %(amount)s
                            THEN 1 ELSE 0 END,
       allowed = (SELECT hits FROM previous) * %(weight)s + w.hits + 1 <= %(amount)s
RETURNING allowed, hits, (SELECT hits FROM previous) AS previous_hits"""
TAKE = f"WITH {PREVIOUS_WINDOW}{COUNT_HIT}"

SWEEP = """
DELETE FROM rate_limit_windows
 WHERE ctid = ANY (ARRAY(SELECT ctid FROM rate_limit_windows WHERE expires_at < now() LIMIT %(batch)s))
"""


@dataclass(frozen=True, slots=True)
class WindowCount:
    allowed: bool
    hits: int  # allowed hits in the current window, this one included if it was allowed
    previous_hits: int


@dataclass(frozen=True, slots=True)
class Take:
    """One hit on `bucket` in the window starting at `start` (Unix seconds), allowed while the
    previous window's count times `weight` plus this window's stays within `amount`."""

    bucket: str
    start: int
    period_seconds: int
    weight: float
    amount: int
    expires_at: datetime

    def parameters(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "start": self.start,
            "previous_start": self.start - self.period_seconds,
            "weight": self.weight,
            "amount": self.amount,
            "expires_at": self.expires_at,
        }


async def take(connection: AsyncConnection[Any], hit: Take) -> WindowCount:
    """Count one hit inside the caller's transaction (the row stays locked until it ends)."""
    cursor = await connection.execute(TAKE, hit.parameters())
    allowed, hits, previous_hits = await cursor.fetchone()  # type: ignore[misc]
    return WindowCount(allowed=bool(allowed), hits=int(hits), previous_hits=int(previous_hits))


async def take_from(pool: AsyncConnectionPool, hit: Take) -> WindowCount:
    """Count one hit in a statement of its own (the pool's connections autocommit)."""
    async with pool.connection() as connection:
        return await take(connection, hit)


async def sweep(pool: AsyncConnectionPool, batch: int = 10_000) -> int:
    """Delete windows that can no longer count, a batch at a time; how many went."""
    deleted = 0
    async with pool.connection() as connection:
        while True:
            cursor = await connection.execute(SWEEP, {"batch": batch})
            deleted += cursor.rowcount
            if cursor.rowcount < batch:
                return deleted
