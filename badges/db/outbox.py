"""The outbox: the one source of live updates, written here and tailed by every API process
(`api/hub.py`) through the reads and the LISTEN below.

Rows are written under a transaction-scoped advisory lock, so ids become visible in id order
and a tailer that reads `id > last_seen` never skips a row committed late.

Hand-written on the psycopg pool: the tail runs on the real-time path (bench/realtime.py), and
`append_insight` writes inside its caller's psycopg transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base

OUTBOX_CHANNEL = "badges_outbox"
# Key of the advisory lock that orders outbox writers (any constant; "outbox" in ASCII).
OUTBOX_LOCK_KEY = 0x6F7574626F78


class OutboxEntry(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # progress | award | insight
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_outbox_user_id_id", "user_id", "id"),)


async def append_insight(connection: AsyncConnection[Any], user_id: uuid.UUID, payload: dict[str, Any]) -> None:
    """Append an `insight` for the member inside the caller's transaction (which takes the outbox
    lock first, so ids stay in commit order) and wake the tailers when it commits."""
    await connection.execute(f"SELECT pg_advisory_xact_lock({OUTBOX_LOCK_KEY})")
    await connection.execute(
        "INSERT INTO outbox (user_id, kind, payload) VALUES (%s, 'insight', %s)", (user_id, Jsonb(payload))
    )
    await connection.execute(f"NOTIFY {OUTBOX_CHANNEL}")


# --- the tail (on the hot path: the psycopg pool) --------------------------------------------

READ_NEW = "SELECT id, user_id, kind, payload FROM outbox WHERE id > %s ORDER BY id LIMIT %s"
READ_MEMBER = "SELECT id, kind, payload FROM outbox WHERE user_id = %s AND id > %s ORDER BY id LIMIT %s"


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    user_id: uuid.UUID
    kind: str
    payload: dict[str, Any]


async def last_outbox_id(pool: AsyncConnectionPool) -> int:
    """The newest row's id (0 for an empty outbox): a tail started now reads what comes after."""
    async with pool.connection() as connection:
        row = await (await connection.execute("SELECT coalesce(max(id), 0) FROM outbox")).fetchone()
    return row[0] if row else 0


async def read_outbox(pool: AsyncConnectionPool, after_id: int, limit: int) -> list[OutboxRecord]:
    """Up to `limit` rows after `after_id`, every member's, in id order."""
    async with pool.connection() as connection:
        cursor = await connection.execute(READ_NEW, (after_id, limit))
        return [OutboxRecord(*row) for row in await cursor.fetchall()]


async def read_member_outbox(
    pool: AsyncConnectionPool, user_id: uuid.UUID, after_id: int, limit: int
) -> list[OutboxRecord]:
    """Up to `limit` of the member's rows after `after_id`, in id order."""
    async with pool.connection() as connection:
        cursor = await connection.execute(READ_MEMBER, (user_id, after_id, limit))
        return [OutboxRecord(id, user_id, kind, payload) for id, kind, payload in await cursor.fetchall()]


@dataclass(frozen=True, slots=True)
class TailLag:
    """How far a tail that has read up to `tail_id` is behind: the rows after it, and the age of
    the oldest of them (0 when it has read everything)."""

    tail_id: int
    rows: int
    seconds: float


OUTBOX_LAG = """
SELECT tail, greatest(newest.id - tail, 0),
       coalesce(extract(epoch FROM now() - (SELECT created_at FROM outbox WHERE id > tail ORDER BY id LIMIT 1)), 0)
  FROM unnest(%s::bigint[]) AS tails(tail),
       (SELECT coalesce(max(id), 0) AS id FROM outbox) AS newest
"""


async def outbox_lag(pool: AsyncConnectionPool, tail_ids: Sequence[int]) -> tuple[int, list[TailLag]]:
    """The newest row's id, and how far behind it each tail is (read when metrics are scraped,
    never on the tail's own path)."""
    async with pool.connection() as connection:
        newest_row = await (await connection.execute("SELECT coalesce(max(id), 0) FROM outbox")).fetchone()
        rows = await (await connection.execute(OUTBOX_LAG, (list(tail_ids),))).fetchall()
    return (newest_row[0] if newest_row else 0), [
        TailLag(tail, rows_behind, float(age)) for tail, rows_behind, age in rows
    ]


@asynccontextmanager
async def listening(libpq_url: str, *channels: str) -> AsyncIterator[AsyncConnection[Any]]:
    """A connection of its own (not the pool's: it stays open) that LISTENs on `channels`; read
    its `notifies()`. NOTIFY is only a wake-up: the listener reads the rows."""
    async with await AsyncConnection.connect(libpq_url, autocommit=True) as connection:
        for channel in channels:
            await connection.execute(f"LISTEN {channel}")
        yield connection
