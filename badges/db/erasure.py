"""Erasure in the database: the tombstone that refuses an erased member's old tokens, the
deletion of every row a member owns, and the destruction of their data key.

The tombstone holds only the digest of the token subject and the time: it names no internal id,
so nothing left behind (audit records, Temporal histories) can be tied back to the person.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import DateTime, LargeBinary, func
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base

# Every API process LISTENs here and forgets what it cached about the member named in the payload.
ERASURE_CHANNEL = "badges_erasure"


class ErasedSubject(Base):
    __tablename__ = "erased_subjects"

    subject_digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    # Tokens issued at or before this instant are refused with 410 for good; a later sign-in
    # with the same subject starts a new, empty membership.
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


async def block_member(connection: AsyncConnection[Any], user_id: uuid.UUID) -> bool:
    """Tombstone the member's subject (refusing their tokens from now on) and tell every API
    process. Idempotent; False when the member's row is already gone (a later step ran)."""
    cursor = await connection.execute(
        "INSERT INTO erased_subjects (subject_digest, erased_at)"
        " SELECT subject_digest, now() FROM members WHERE id = %s"
        " ON CONFLICT (subject_digest) DO NOTHING RETURNING 1",
        (user_id,),
    )
    inserted = await cursor.fetchone() is not None
    exists = await (await connection.execute("SELECT 1 FROM members WHERE id = %s", (user_id,))).fetchone()
    await connection.execute("SELECT pg_notify(%s, %s)", (ERASURE_CHANNEL, str(user_id)))
    return inserted or exists is not None


async def delete_member_rows(connection: AsyncConnection[Any], user_id: uuid.UUID) -> dict[str, int]:
    """Delete the member and, by cascade, every row that references them. Returns how many rows
    each table held (counts only: they go into the audit record)."""
    counts: dict[str, int] = {}
    for table in await member_tables(connection):
        query = sql.SQL("SELECT count(*) FROM {} WHERE user_id = %s").format(sql.Identifier(table))
        cursor = await connection.execute(query, (user_id,))
        row = await cursor.fetchone()
        if row and row[0]:
            counts[table] = int(row[0])
    cursor = await connection.execute("DELETE FROM members WHERE id = %s", (user_id,))
    counts["members"] = cursor.rowcount
    await connection.execute("SELECT pg_notify(%s, %s)", (ERASURE_CHANNEL, str(user_id)))
    return counts


async def member_tables(connection: AsyncConnection[Any]) -> list[str]:
    """Every table with a foreign key to `members` (they all cascade): read from the catalogue,
    so a table added later is counted, deleted and exported without being listed here."""
    cursor = await connection.execute(
        "SELECT DISTINCT t.relname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
        " WHERE c.contype = 'f' AND c.confrelid = 'members'::regclass ORDER BY 1"
    )
    return [row[0] for row in await cursor.fetchall()]


async def destroy_keys(connection: AsyncConnection[Any], owner: str) -> int:
    """Destroy the owner's data keys: the wrapped key material is overwritten with NULL, so every
    ciphertext made with them (payloads, sealed columns, backups) stays unreadable."""
    cursor = await connection.execute(
        "UPDATE data_keys SET wrapped_key = NULL, destroyed_at = coalesce(destroyed_at, now())"
        " WHERE owner = %s AND wrapped_key IS NOT NULL",
        (owner,),
    )
    await connection.execute("SELECT pg_notify(%s, %s)", (ERASURE_CHANNEL, owner))
    return cursor.rowcount


async def erasure_state(pool: AsyncConnectionPool, digest: bytes) -> tuple[datetime | None, datetime | None]:
    """For a subject digest: when it was erased (None if never) and when its current member row
    was created (None if there is none)."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT (SELECT erased_at FROM erased_subjects WHERE subject_digest = %(d)s),"
            " (SELECT created_at FROM members WHERE subject_digest = %(d)s)",
            {"d": digest},
        )
        row = await cursor.fetchone()
    return (row[0], row[1]) if row else (None, None)
