"""The outbox: the one source of live updates, tailed by every API process.

Rows are written under a transaction-scoped advisory lock, so ids become visible in id order
and a tailer that reads `id > last_seen` never skips a row committed late.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
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
