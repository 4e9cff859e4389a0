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
from collections import deque
from collections.abc import Sequence
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
class ChainAnchor:
    """What a keyed checkpoint (`db/audit_checkpoints.py`) vouches for: the chain passes through
    record `audit_id` with hash `chain_hash`, with `records` records up to and including it (0 and
    the genesis hash: the log was empty)."""

    checkpoint: int  # the checkpoint's sequence number, to name it in a verdict
    audit_id: int
    chain_hash: bytes
    records: int


@dataclass(frozen=True)
class VerificationResult:
    records_checked: int
    first_bad_id: int | None
    reason: str
    first_bad_checkpoint: int | None = None
    anchors_checked: int = 0
    # Where the walk ended: the last record checked, its hash, and the records up to it.
    last_id: int = 0
    last_hash: bytes = GENESIS_HASH
    records: int = 0

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None and self.first_bad_checkpoint is None


async def verify_chain(
    pool: AsyncConnectionPool,
    batch: int = 1000,
    *,
    anchors: Sequence[ChainAnchor] = (),
    start: ChainAnchor | None = None,
) -> VerificationResult:
    """Recompute every record's hash in id order; the first record that does not match is named.

    Each of `anchors` must be met on the way: its record present, the records up to it as many as
    it counted, and the chain's hash there the one it holds. Unkeyed, the chain alone shows a
    record changed in place; the anchors also show a tail removed and a chain recomputed over a
    different history. `start`: resume after a point already vouched for (checking only what was
    appended since)."""
    pending = deque(sorted(anchors, key=lambda anchor: anchor.audit_id))
    expected_prev, last_id, records = (
        (start.chain_hash, start.audit_id, start.records) if start else (GENESIS_HASH, 0, 0)
    )
    checked = anchors_checked = 0
    previous_anchor = start

    def failed(record_id: int, reason: str, anchor: ChainAnchor | None = None) -> VerificationResult:
        return VerificationResult(
            checked,
            record_id,
            reason,
            anchor.checkpoint if anchor else None,
            anchors_checked,
            last_id,
            expected_prev,
            records,
        )

    def since(anchor: ChainAnchor | None) -> str:
        if anchor is None or anchor.audit_id == 0:
            return "from the start of the log"
        return f"after record {anchor.audit_id} (checkpoint {anchor.checkpoint})"

    while pending and pending[0].audit_id <= last_id:  # the empty log, or points before `start`
        anchor = pending.popleft()
        if start is None and (anchor.records, anchor.chain_hash) != (0, GENESIS_HASH):
            return failed(0, f"checkpoint {anchor.checkpoint} anchors record 0 but not an empty log", anchor)
        anchors_checked += start is None
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
                if pending and pending[0].audit_id < record_id:
                    anchor = pending[0]
                    return failed(
                        anchor.audit_id,
                        f"record {anchor.audit_id}, which checkpoint {anchor.checkpoint} anchors, is missing:"
                        " it was deleted",
                        anchor,
                    )
                if bytes(prev) != expected_prev:
                    return failed(
                        record_id, "prev_hash does not match the previous record (one was deleted, inserted or altered)"
                    )
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
                    return failed(record_id, "hash does not match the record's contents")
                expected_prev = bytes(stored)
                checked += 1
                records += 1
                last_id = record_id
                while pending and pending[0].audit_id == record_id:  # checkpoints with nothing new between
                    anchor = pending.popleft()
                    if records != anchor.records:
                        return failed(
                            record_id,
                            f"checkpoint {anchor.checkpoint} counted {anchor.records} records up to record"
                            f" {record_id}, the log holds {records}: records {since(previous_anchor)} were"
                            " deleted or inserted and the chain recomputed",
                            anchor,
                        )
                    if expected_prev != anchor.chain_hash:
                        return failed(
                            record_id,
                            f"the chain's hash at record {record_id} is not the one checkpoint {anchor.checkpoint}"
                            f" signed: a record {since(previous_anchor)}, up to {record_id}, was altered and the"
                            " chain recomputed",
                            anchor,
                        )
                    anchors_checked += 1
                    previous_anchor = anchor
    if pending:
        anchor = pending[0]
        return failed(
            anchor.audit_id,
            f"the log ends at record {last_id} ({records} records) but checkpoint {anchor.checkpoint} anchors"
            f" record {anchor.audit_id} ({anchor.records} records): its tail was removed",
            anchor,
        )
    return VerificationResult(checked, None, "ok", None, anchors_checked, last_id, expected_prev, records)


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
