"""Dead letters: work a member's workflow could not apply (a value the database refuses, an
event the rules cannot evaluate), set aside with its reason instead of retried forever, for
operators to see (`GET /v1/admin/dead-letters`) and count.

The payload (what could not be applied, with the error as raised) is sealed with the member's
key; the columns beside it say what failed without quoting the data. Written by the worker's
`record_dead_letter` activity, hand-written on the psycopg pool like the rest of the member
batch's writes; the listing and the count are SQLAlchemy Core.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, LargeBinary, String, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base

REASON_LENGTH = 300
EVENT_ID_LENGTH = 200
KINDS = ("event", "decision", "reevaluation")


class DeadLetterRow(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # event | decision | reevaluation
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH))
    event_ids: Mapped[list[Any]] = mapped_column(JSONB)  # as `storable` text
    review_id: Mapped[str | None] = mapped_column(String(100))  # the decided item, for a decision
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # sealed JSON (`KeyStore.seal`)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("kind IN ('event', 'decision', 'reevaluation')", name="kind"),)


def storable(text: str, limit: int) -> str:
    """`text` as PostgreSQL text and jsonb store it whatever it holds: a NUL or a lone surrogate
    (what may have made the work fail) is written as its escape, and the length is bounded."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")[:limit]


async def record_dead_letter(
    pool: AsyncConnectionPool,
    user_id: uuid.UUID,
    kind: str,
    reason: str,
    event_ids: Sequence[str],
    review_id: str | None,
    sealed_payload: bytes,
) -> int:
    """Store one dead letter; returns its id."""
    async with pool.connection() as connection:
        row = await (
            await connection.execute(
                "INSERT INTO dead_letters (user_id, kind, reason, event_ids, review_id, payload)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    user_id,
                    kind,
                    storable(reason, REASON_LENGTH),
                    Jsonb([storable(event_id, EVENT_ID_LENGTH) for event_id in event_ids]),
                    storable(review_id, 100) if review_id is not None else None,
                    sealed_payload,
                ),
            )
        ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    id: int
    user_id: uuid.UUID
    kind: str
    reason: str
    event_ids: list[str]
    review_id: str | None
    created_at: datetime


async def dead_letters(
    engine: AsyncEngine, *, user_id: uuid.UUID | None, after_id: int, limit: int
) -> list[DeadLetterRecord]:
    """A page of dead letters, oldest first, after `after_id`; the sealed payloads stay sealed."""
    table = DeadLetterRow.__table__
    query = (
        select(
            table.c.id,
            table.c.user_id,
            table.c.kind,
            table.c.reason,
            table.c.event_ids,
            table.c.review_id,
            table.c.created_at,
        )
        .where(table.c.id > after_id)
        .order_by(table.c.id)
        .limit(limit)
    )
    if user_id is not None:
        query = query.where(table.c.user_id == user_id)
    async with engine.connect() as connection:
        return [DeadLetterRecord(**row._mapping) for row in await connection.execute(query)]


async def dead_letter_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(DeadLetterRow)) or 0)
