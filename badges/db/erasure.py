"""Erasure in the database: the tombstone that refuses an erased member's tokens, the deletion
of every row a member owns, and the destruction of their data key.

The tombstone holds only the digest of the token subject and the time: it names no internal id,
so nothing left behind (audit records, Temporal histories) can be tied back to the person
through it. It refuses the subject for good: an app that silently refreshes its token must not
sign an erased person up again.

Hand-written on the psycopg pool: each step runs in one transaction with its audit record
(`audit.append_audit`), which is written on the pool's connections.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from sqlalchemy import DateTime, LargeBinary, func
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.audit import append_audit
from badges.db.base import Base
from badges.db.credentials import revoke_member_credentials

# Every API and worker process LISTENs here and forgets what it cached about the member named in the payload.
ERASURE_CHANNEL = "badges_erasure"


class ErasedSubject(Base):
    __tablename__ = "erased_subjects"

    subject_digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


async def block_member(connection: AsyncConnection[Any], user_id: uuid.UUID) -> bool:
    """Tombstone the member's subject (refusing their tokens from now on) and tell every API
    process. Idempotent: True only for the call that tombstoned them."""
    cursor = await connection.execute(
        "INSERT INTO erased_subjects (subject_digest, erased_at)"
        " SELECT subject_digest, now() FROM members WHERE id = %s"
        " ON CONFLICT (subject_digest) DO NOTHING RETURNING 1",
        (user_id,),
    )
    inserted = await cursor.fetchone() is not None
    await connection.execute("SELECT pg_notify(%s, %s)", (ERASURE_CHANNEL, str(user_id)))
    return inserted


async def delete_member_rows(connection: AsyncConnection[Any], user_id: uuid.UUID) -> dict[str, int]:
    """Delete the member and, by cascade, every row that references them. Returns how many rows
    each table held (counts only: they go into the audit record)."""
    counts: dict[str, int] = {}
    for table, column in await member_tables(connection):
        query = sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(sql.Identifier(table), sql.Identifier(column))
        cursor = await connection.execute(query, (user_id,))
        row = await cursor.fetchone()
        if row and row[0]:
            counts[table] = int(row[0])
    cursor = await connection.execute("DELETE FROM members WHERE id = %s", (user_id,))
    counts["members"] = cursor.rowcount
    # Open Badges credentials name the member without a foreign key: revoked and cut loose, kept
    # so that their status-list bits stay set (`db/credentials.py`).
    revoked = await revoke_member_credentials(connection, user_id)
    if revoked:
        counts["credentials"] = revoked
    # Rate-limit counters keyed by the member (events, exports, reads) name them without a foreign
    # key (`db/rate_limits.py`: their bucket ends with the key): named here, so they go too.
    cursor = await connection.execute("DELETE FROM rate_limit_windows WHERE bucket LIKE %s", (f"%/{user_id}%",))
    if cursor.rowcount:
        counts["rate_limit_windows"] = cursor.rowcount
    await connection.execute("SELECT pg_notify(%s, %s)", (ERASURE_CHANNEL, str(user_id)))
    return counts


async def member_tables(connection: AsyncConnection[Any]) -> list[tuple[str, str]]:
    """(table, column) of every foreign key to `members`, read from the catalogue, so a table
    added later is counted, deleted and exported without being listed here. (A test holds every
    such key to ON DELETE CASCADE.) One per table: a table that names two members (a member's
    contacts) is the member's through its `user_id`; the rows naming them in the other column
    are the other member's, and go by the cascade."""
    cursor = await connection.execute(
        "SELECT DISTINCT ON (t.relname) t.relname, a.attname FROM pg_constraint c"
        " JOIN pg_class t ON t.oid = c.conrelid"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
        " WHERE c.contype = 'f' AND c.confrelid = 'members'::regclass ORDER BY 1, a.attname <> 'user_id'"
    )
    return [(row[0], row[1]) for row in await cursor.fetchall()]


async def destroy_keys(connection: AsyncConnection[Any], owner: str) -> int:
    """Destroy the owner's data keys: the wrapped key material is overwritten with NULL, so every
    ciphertext made with them (payloads, sealed columns) stays unreadable. A backup's copy of the
    wrapped key opens until its master key is destroyed (`master_keys.rotate_due`)."""
    cursor = await connection.execute(
        "UPDATE data_keys SET wrapped_key = NULL, destroyed_at = coalesce(destroyed_at, now())"
        " WHERE owner = %s AND wrapped_key IS NOT NULL",
        (owner,),
    )
    await connection.execute("SELECT pg_notify(%s, %s)", (ERASURE_CHANNEL, owner))
    return cursor.rowcount


async def audit_erasure(
    connection: AsyncConnection[Any], reference: uuid.UUID, action: str, details: dict[str, Any]
) -> None:
    """An erasure step for the audit log: by reference and counts, naming nobody."""
    await append_audit(
        connection,
        actor="system",
        actor_role="system",
        action=f"erasure.{action}",
        subject=None,
        resource=f"erasure/{reference}",
        purpose="erasure requested by the member",
        details=details,
    )
