"""Member data exports: everything held about a member, section by section, each section sealed
with the member's key until the member downloads it. Exports expire (the retention Schedule
deletes them after `EXPORT_TTL`, see `db/retention.py`).

Sections are found, not listed: one per table that references `members` (so a table added later
is exported without anyone remembering to), plus the member's profile and the audit records of
accesses to their data.

Producing an export is hand-written on the psycopg pool: each step runs in its activity's
transaction on the pool, and sections read whole tables by names found in the system catalogue
(`SELECT *`). Its status and the download read through SQLAlchemy Core on the engine.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.db.erasure import member_tables
from badges.db.keys import KeyStore

EXPORT_TTL = timedelta(hours=24)
PROFILE = "profile"
AUDIT = "accesses"  # audit records about the member: who (by role) read what, when and why
# Open Badges credentials issued to the member (`db/credentials.py`: no foreign key, so named here).
CREDENTIALS = "credentials"
# Columns that are ours, not the member's: internal bookkeeping and credentials.
# Merchant keys are digests under the member's key: they only match corrections to transactions;
# notice digests, likewise, only tell an evaluation which notices the previous one gave (the
# notices themselves are in the exported document).
NOT_EXPORTED = {
    ("members", "subject_digest"),
    ("bank_connections", "access_token"),
    ("bank_transactions", "merchant_key"),
    ("category_corrections", "merchant_key"),
    ("member_insights", "notice_digests"),
    # An invitation's code is the member's to give; only its digest is kept, to match it.
    ("contact_invitations", "code_digest"),
}
# Columns sealed with the member's key (`KeyStore.seal`), opened for the export. A test holds
# every binary column of a member table to one of these two lists.
SEALED = {
    ("members", "demographics"),
    ("bank_accounts", "name"),
    ("bank_accounts", "mask"),
    ("bank_transactions", "description"),
    ("bank_transactions", "merchant_name"),
    ("category_corrections", "merchant"),
    ("member_insights", "sealed"),
    ("member_goals", "sealed"),
    ("review_events", "sealed"),
    ("review_queue", "sealed"),
    ("dead_letters", "payload"),
}
# Sealed columns that hold JSON: exported as the JSON they hold.
SEALED_JSON = {
    ("members", "demographics"),
    ("member_insights", "sealed"),
    ("member_goals", "sealed"),
    ("review_events", "sealed"),
    ("review_queue", "sealed"),
    ("dead_letters", "payload"),
}


class MemberExport(Base):
    __tablename__ = "member_exports"

    export_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sections_total: Mapped[int] = mapped_column(Integer, server_default="0")
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MemberExportPart(Base):
    __tablename__ = "member_export_parts"

    export_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("member_exports.export_id", ondelete="CASCADE"), primary_key=True
    )
    section: Mapped[str] = mapped_column(String(64), primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


async def export_sections(connection: AsyncConnection[Any]) -> list[str]:
    tables = [table for table, _ in await member_tables(connection) if table != MemberExport.__tablename__]
    return [PROFILE, *tables, CREDENTIALS, AUDIT]


async def begin_export(connection: AsyncConnection[Any], export_id: uuid.UUID, user_id: uuid.UUID) -> list[str]:
    """Record the export (idempotent) and return its sections."""
    sections = await export_sections(connection)
    await connection.execute(
        "INSERT INTO member_exports (export_id, user_id, sections_total) VALUES (%s, %s, %s)"
        " ON CONFLICT (export_id) DO NOTHING",
        (export_id, user_id, len(sections)),
    )
    return sections


def plain(value: Any) -> Any:
    """A column value as JSON: bytes in base64, times in ISO 8601, any other non-JSON type as
    its text (so no column type can wedge an export)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


async def section_rows(
    connection: AsyncConnection[Any], keys: KeyStore, user_id: uuid.UUID, section: str
) -> list[dict[str, Any]]:
    cursor = connection.cursor(row_factory=dict_row)
    table = section
    if section == PROFILE:
        table = "members"
        await cursor.execute("SELECT * FROM members WHERE id = %s", (user_id,))
    elif section == AUDIT:
        # By role, not by name: the member learns who had access and why, staff keep their privacy.
        await cursor.execute(
            "SELECT id, at, actor_role, action, resource, purpose FROM audit_log WHERE subject = %s ORDER BY id",
            (user_id,),
        )
    elif section == CREDENTIALS:
        await cursor.execute("SELECT * FROM credentials WHERE user_id = %s ORDER BY issued_at", (user_id,))
    else:
        column = dict(await member_tables(connection)).get(section)
        if column is None:
            raise ValueError(f"unknown export section {section!r}")
        query = sql.SQL("SELECT * FROM {} WHERE {} = %s ORDER BY 1").format(
            sql.Identifier(section), sql.Identifier(column)
        )
        await cursor.execute(query, (user_id,))
    rows = []
    for row in await cursor.fetchall():
        item = {}
        for column, value in row.items():
            if (table, column) in NOT_EXPORTED:
                continue
            if (table, column) in SEALED and value is not None:
                opened = (await keys.unseal(bytes(value))).decode()
                item[column] = json.loads(opened) if (table, column) in SEALED_JSON else opened
            else:
                item[column] = plain(value)
        rows.append(item)
    return rows


async def store_part(
    connection: AsyncConnection[Any], keys: KeyStore, export_id: uuid.UUID, user_id: uuid.UUID, section: str
) -> int:
    rows = await section_rows(connection, keys, user_id, section)
    sealed = await keys.seal(str(user_id), json.dumps(rows, separators=(",", ":"), default=str).encode())
    await connection.execute(
        "INSERT INTO member_export_parts (export_id, section, rows, sealed) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (export_id, section) DO UPDATE SET rows = excluded.rows, sealed = excluded.sealed",
        (export_id, section, len(rows), sealed),
    )
    return len(rows)


async def finish_export(connection: AsyncConnection[Any], export_id: uuid.UUID) -> None:
    await connection.execute(
        "UPDATE member_exports SET completed_at = coalesce(completed_at, now()) WHERE export_id = %s", (export_id,)
    )


@dataclass(frozen=True, slots=True)
class ExportState:
    sections_done: int
    sections_total: int
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ExportSummary:
    export_id: uuid.UUID
    requested_at: datetime
    completed_at: datetime | None


async def latest_export(engine: AsyncEngine, user_id: uuid.UUID, since: datetime) -> ExportSummary | None:
    """The member's newest export requested since `since` (finished or not), if any."""
    query = (
        select(MemberExport.export_id, MemberExport.requested_at, MemberExport.completed_at)
        .where(MemberExport.user_id == user_id, MemberExport.requested_at >= since)
        .order_by(MemberExport.requested_at.desc())
        .limit(1)
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).first()
    return ExportSummary(row[0], row[1], row[2]) if row else None


async def export_status(engine: AsyncEngine, user_id: uuid.UUID, export_id: uuid.UUID) -> ExportState | None:
    """How far the member's export is, or None if they have no such export (or it expired)."""
    parts_done = (
        select(func.count())
        .select_from(MemberExportPart)
        .where(MemberExportPart.export_id == MemberExport.export_id)
        .scalar_subquery()
    )
    query = select(parts_done, MemberExport.sections_total, MemberExport.completed_at).where(
        MemberExport.export_id == export_id, MemberExport.user_id == user_id
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).first()
    return ExportState(int(row[0]), int(row[1]), row[2]) if row else None


async def export_document(
    engine: AsyncEngine, keys: KeyStore, user_id: uuid.UUID, export_id: uuid.UUID, completed_at: datetime
) -> AsyncIterator[bytes]:
    """The finished export as one JSON document, produced a section at a time."""
    head = {"exportId": str(export_id), "userId": str(user_id), "generatedAt": completed_at.isoformat()}
    yield json.dumps(head)[:-1].encode() + b',"sections":{'
    part = MemberExportPart.__table__.c
    async with engine.connect() as connection:
        sections = (
            await connection.execute(
                select(part.section, part.rows).where(part.export_id == export_id).order_by(part.section)
            )
        ).all()
    for index, (section, rows) in enumerate(sections):
        async with engine.connect() as connection:
            sealed = await connection.scalar(
                select(part.sealed).where(part.export_id == export_id, part.section == section)
            )
        items = await keys.unseal(sealed) if sealed is not None else b"[]"
        prefix = b"," if index else b""
        yield prefix + json.dumps(section).encode() + b':{"rows":' + str(rows).encode() + b',"items":' + items + b"}"
    yield b"}}"
