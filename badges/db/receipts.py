"""Event receipts: the API's record that an event id was accepted for a member (the table), and its
hot-path statements: claim an event id for a member (counting the member's rate limit in the same
statement), then mark it handed over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.db.rate_limits import COUNT_HIT, PREVIOUS_WINDOW, Take, WindowCount

log = logging.getLogger("badges.receipts")
# How long the marks' writer waits for more marks before writing: a retry that reaches another
# API process within it is handed over again (the workflow drops the repeat by id).
MARK_LINGER_SECONDS = 0.1


class EventReceiptRow(Base):
    __tablename__ = "event_receipts"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Set once the event is handed to Temporal. A receipt left without it (the process died in
    # between) is handed over again when the client retries; the workflow de-duplicates.
    signalled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# One statement: insert the receipt, or find the one already there. The SELECT sees the snapshot
# from before the INSERT, so for a repeated id it reads the existing row.
CLAIM = """
WITH claimed AS (
    INSERT INTO event_receipts (user_id, event_id) VALUES (%(user_id)s, %(event_id)s)
    ON CONFLICT (user_id, event_id) DO NOTHING
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM claimed),
       (SELECT signalled_at IS NOT NULL FROM event_receipts
         WHERE user_id = %(user_id)s AND event_id = %(event_id)s)
"""

# The same claim, made only if a hit on the member's rate limit is allowed, counted first in the
# same statement (`db/rate_limits.py`): one round trip and one transaction per event instead of
# two. The receipt's INSERT reads the count's row, so it runs after it, and not at all when the
# hit is refused: a refused event leaves no receipt, as when the limit was a statement of its own.
CLAIM_WITHIN_RATE = f"""
WITH {PREVIOUS_WINDOW},
counted AS ({COUNT_HIT}),
claimed AS (
    INSERT INTO event_receipts (user_id, event_id)
    SELECT %(user_id)s, %(event_id)s FROM counted WHERE counted.allowed
    ON CONFLICT (user_id, event_id) DO NOTHING
    RETURNING 1
)
SELECT counted.allowed, counted.hits, counted.previous_hits,
       EXISTS (SELECT 1 FROM claimed),
       (SELECT signalled_at IS NOT NULL FROM event_receipts
         WHERE user_id = %(user_id)s AND event_id = %(event_id)s)
  FROM counted
"""

MARK_SIGNALLED = """
UPDATE event_receipts AS receipt SET signalled_at = now()
  FROM unnest(%(user_ids)s::uuid[], %(event_ids)s::text[]) AS mark(user_id, event_id)
 WHERE receipt.user_id = mark.user_id AND receipt.event_id = mark.event_id AND receipt.signalled_at IS NULL
"""


@dataclass(frozen=True)
class Claim:
    new: bool
    # True when an earlier request with this id already reached Temporal.
    already_signalled: bool
    # The rate limit's count, when the claim was made within one (`hit`); a refused hit claimed nothing.
    count: WindowCount | None = None


async def claim_event(pool: AsyncConnectionPool, user_id: uuid.UUID, event_id: str, hit: Take | None = None) -> Claim:
    """Claim an event id for a member; with `hit`, only if that hit on the member's rate limit
    is allowed, counted in the same statement."""
    async with pool.connection() as connection:
        if hit is None:
            cursor = await connection.execute(CLAIM, {"user_id": user_id, "event_id": event_id})
            new, signalled = await cursor.fetchone()  # type: ignore[misc]
            return Claim(new=bool(new), already_signalled=bool(signalled))
        cursor = await connection.execute(
            CLAIM_WITHIN_RATE, {**hit.parameters(), "user_id": user_id, "event_id": event_id}
        )
        allowed, hits, previous_hits, new, signalled = await cursor.fetchone()  # type: ignore[misc]
    count = WindowCount(allowed=bool(allowed), hits=int(hits), previous_hits=int(previous_hits))
    return Claim(new=bool(new), already_signalled=bool(signalled), count=count)


class SignalledMarks:
    """Marks receipts as handed over to Temporal, as many as are waiting in one statement, off the
    request's path: the writer waits `linger` seconds after the first mark, so under load one
    UPDATE covers a whole burst instead of one per event.

    A mark not yet written counts already in this process (`claim`), so a retry in between is still
    answered as a duplicate here; one that reaches another API process in that time (the linger and
    a statement's time, or while PostgreSQL refuses writes) is answered 202 and handed over again. A mark lost with the
    process costs the same if its sender retries. Either way the workflow drops the repeat by id.

    Two processes marking the same receipts at once (a retry handed over by both), or an erasure
    deleting them, can deadlock with a batch; PostgreSQL ends one side and its marks are written
    on the next attempt, a second later.
    """

    def __init__(self, pool: AsyncConnectionPool, *, linger: float = MARK_LINGER_SECONDS) -> None:
        self._pool = pool
        self._linger = linger
        self._pending: set[tuple[uuid.UUID, str]] = set()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()  # one statement at a time: marks added meanwhile wait for the next
        self._closed = False

    def __contains__(self, receipt: tuple[uuid.UUID, str]) -> bool:
        return receipt in self._pending

    async def claim(self, user_id: uuid.UUID, event_id: str, hit: Take | None = None) -> Claim:
        """Claim an event id (within the rate limit's `hit`, if given: `claim_event`), counting
        marks not yet written as handed over.

        Looked up here before the database is asked: a mark may be written, and leave the
        pending set, after the claim's snapshot was taken; looked up afterwards, it would be in
        neither, and a repeat would be handed over again."""
        marked_here = (user_id, event_id) in self._pending
        claim = await claim_event(self._pool, user_id, event_id, hit)
        return Claim(new=claim.new, already_signalled=claim.already_signalled or marked_here, count=claim.count)

    def add(self, user_id: uuid.UUID, event_id: str) -> None:
        self._pending.add((user_id, event_id))
        self._wake.set()
        if self._closed:  # shutting down: kept unwritten, so a retry is handed over again
            return
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_forever(), name="signalled-marks")

    async def flush(self) -> None:
        """Write every mark waiting now (at shutdown, and for tests)."""
        while self._pending:
            await self._write_waiting()

    async def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        try:
            await self.flush()
        except psycopg.Error:
            left = len(self._pending)
            log.warning("%d receipts left unmarked at shutdown; their retries are handed over again", left)

    async def _write_forever(self) -> None:
        while True:
            await self._wake.wait()
            # The marks added meanwhile go in the same statement: at 100 events a second one
            # UPDATE (and one commit) covers about ten of them, where one each was written before.
            await asyncio.sleep(self._linger)
            self._wake.clear()
            try:
                await self._write_waiting()
            except Exception:
                # Kept for the next attempt; until then they still count in this process.
                log.exception("could not mark %d receipts as signalled; retrying", len(self._pending))
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _write_waiting(self) -> None:
        async with self._writing:
            marks = set(self._pending)
            if marks:
                await self._execute(marks)
                self._pending -= marks

    async def _execute(self, marks: set[tuple[uuid.UUID, str]]) -> None:
        user_ids, event_ids = zip(*marks, strict=True)
        async with self._pool.connection() as connection:
            await connection.execute(MARK_SIGNALLED, {"user_ids": list(user_ids), "event_ids": list(event_ids)})
