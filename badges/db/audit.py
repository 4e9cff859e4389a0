"""The audit log: who read or changed what, whose, when and why. Append-only (a trigger refuses
UPDATE and DELETE) and tamper-evident: each record's hash covers the previous record's hash.

Appending is hand-written on the psycopg pool: a record commits inside the transaction of what it
describes (consent changes, erasure steps, retention, bank revocations), which hold psycopg
connections; the chain check (`python -m badges.cli.audit verify`) reads on the same pool. Listing
is SQLAlchemy Core."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import BigInteger, DateTime, LargeBinary, String, Text, Uuid, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base


class AuditRecord(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(200))  # a staff subject, "member", "system", an integration
    actor_role: Mapped[str] = mapped_column(String(32))  # user | operator | compliance | admin | system
    action: Mapped[str] = mapped_column(String(64))  # e.g. read.rewards, codec.decode, consent.grant
    # Whose data (a member's internal UUID; no foreign key: records outlive an erased member).
    subject: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    resource: Mapped[str] = mapped_column(Text)  # what: a path, a workflow id
    purpose: Mapped[str] = mapped_column(Text)  # why
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)


GENESIS_HASH = bytes(32)
# Any constant: every append takes this transaction-scoped advisory lock, so the chain stays linear.
AUDIT_LOCK_KEY = 0x6175646974  # "audit"


def canonical_record(
    *,
    at: datetime,
    actor: str,
    actor_role: str,
    action: str,
    subject: uuid.UUID | None,
    resource: str,
    purpose: str,
    details: dict[str, Any],
) -> bytes:
    """The bytes a record's hash covers: sorted-key compact JSON, `at` in UTC with microseconds."""
    fields = {
        "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": actor,
        "actor_role": actor_role,
        "action": action,
        "subject": str(subject) if subject is not None else None,
        "resource": resource,
        "purpose": purpose,
        "details": details,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(prev_hash + canonical).digest()


async def record_audit(pool: AsyncConnectionPool, **record: Any) -> None:
    """Append one record (the keyword arguments of `append_audit`) in a transaction of its own."""
    async with pool.connection() as connection, connection.transaction():
        await append_audit(connection, **record)


async def append_audit(
    connection: AsyncConnection[Any],
    *,
    actor: str,
    actor_role: str,
    action: str,
    subject: uuid.UUID | None,
    resource: str,
    purpose: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one record, chained to the last one, inside the caller's transaction (so the record
    commits with what it describes, or not at all), under the audit lock."""
    details = details or {}
    # Python's clock, truncated to what PostgreSQL stores (microseconds), so the hashed value
    # is exactly the stored one.
    at = datetime.now(UTC)
    canonical = canonical_record(
        at=at,
        actor=actor,
        actor_role=actor_role,
        action=action,
        subject=subject,
        resource=resource,
        purpose=purpose,
        details=details,
    )
    await connection.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK_KEY,))
    cursor = await connection.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
    row = await cursor.fetchone()
    prev_hash = bytes(row[0]) if row else GENESIS_HASH
    await connection.execute(
        "INSERT INTO audit_log (at, actor, actor_role, action, subject, resource, purpose, details,"
        " prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            at,
            actor,
            actor_role,
            action,
            subject,
            resource,
            purpose,
            Jsonb(details),
            prev_hash,
            chain_hash(prev_hash, canonical),
        ),
    )


@dataclass(frozen=True)
class VerificationResult:
    records_checked: int
    first_bad_id: int | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None


async def verify_chain(pool: AsyncConnectionPool, batch: int = 1000) -> VerificationResult:
    """Recompute every record's hash in id order; the first record that does not match is named."""
    expected_prev = GENESIS_HASH
    checked = 0
    last_id = 0
    async with pool.connection() as connection:
        while True:
            cursor = await connection.execute(
                "SELECT id, at, actor, actor_role, action, subject, resource, purpose, details, prev_hash, hash"
                " FROM audit_log WHERE id > %s ORDER BY id LIMIT %s",
                (last_id, batch),
            )
            rows = await cursor.fetchall()
            if not rows:
                break
            for record_id, at, actor, role, action, subject, resource, purpose, details, prev, stored in rows:
                if bytes(prev) != expected_prev:
                    return VerificationResult(checked, record_id, "prev_hash does not match the previous record")
                canonical = canonical_record(
                    at=at,
                    actor=actor,
                    actor_role=role,
                    action=action,
                    subject=subject,
                    resource=resource,
                    purpose=purpose,
                    details=details,
                )
                if chain_hash(expected_prev, canonical) != bytes(stored):
                    return VerificationResult(checked, record_id, "hash does not match the record's contents")
                expected_prev = bytes(stored)
                checked += 1
                last_id = record_id
    return VerificationResult(checked, None, "ok")


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    subject: uuid.UUID | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int = 0
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A record as read back."""

    id: int
    at: datetime
    actor: str
    actor_role: str
    action: str
    subject: uuid.UUID | None
    resource: str
    purpose: str
    details: dict[str, Any]  # the JSON payload, as stored
    prev_hash: bytes
    hash: bytes


async def list_audit(engine: AsyncEngine, query: AuditQuery) -> list[AuditEntry]:
    """Records matching every given filter, oldest first, from `after_id` on (for paging)."""
    record = AuditRecord.__table__.c
    statement = select(AuditRecord.__table__).where(record.id > query.after_id)
    if query.actor is not None:
        statement = statement.where(record.actor == query.actor)
    if query.subject is not None:
        statement = statement.where(record.subject == query.subject)
    if query.action is not None:
        statement = statement.where(record.action == query.action)
    if query.since is not None:
        statement = statement.where(record.at >= query.since)
    if query.until is not None:
        statement = statement.where(record.at < query.until)
    async with engine.connect() as connection:
        rows = await connection.execute(statement.order_by(record.id).limit(query.limit))
        return [AuditEntry(**row._mapping) for row in rows]
