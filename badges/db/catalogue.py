"""Badge definitions as stored: every version of every badge, and the catalogue revision.

A definition is never updated in place: `PUT /v1/admin/badges/{badge_id}` appends a version.
`revision` is a global sequence over all versions, so "the catalogue at revision N" is every
badge's newest version with revision ≤ N; workflows load it when events say it moved on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, String, UniqueConstraint, func, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB, distinct_on
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.domain.definitions import BadgeDefinition, BadgeSpec, Catalogue


class BadgeDefinitionVersion(Base):
    __tablename__ = "badge_definitions"

    revision: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    badge_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB)  # the BadgeSpec, camelCase as on the wire
    created_by: Mapped[str] = mapped_column(String(128))  # "catalogue-file" or a staff subject
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("badge_id", "version"),)


CATALOGUE_FILE_AUTHOR = "catalogue-file"
# Serialises catalogue writes (API processes seeding at start-up, admins saving): any constant.
CATALOGUE_LOCK_KEY = 0x636174616C6F67  # "catalog" in ASCII

LATEST_VERSIONS = (
    select(BadgeDefinitionVersion)
    .ext(distinct_on(BadgeDefinitionVersion.badge_id))
    .order_by(BadgeDefinitionVersion.badge_id, BadgeDefinitionVersion.version.desc())
)


def spec_document(spec: BadgeSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", by_alias=True)


def to_definition(row: Row[Any]) -> BadgeDefinition:
    return BadgeDefinition.from_spec(row.badge_id, row.version, BadgeSpec.model_validate(row.spec))


async def current_revision(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        revision = await connection.scalar(select(func.coalesce(func.max(BadgeDefinitionVersion.revision), 0)))
    return int(revision or 0)


async def load_catalogue(engine: AsyncEngine) -> tuple[int, list[BadgeDefinition]]:
    """The newest version of every badge, and the catalogue revision they make up."""
    async with engine.connect() as connection:
        rows = (await connection.execute(LATEST_VERSIONS)).all()
    # The revision comes from the rows themselves: a second query could see a version saved after
    # the first and label these definitions with a revision they do not contain.
    return max((row.revision for row in rows), default=0), [to_definition(row) for row in rows]


@dataclass(frozen=True, slots=True)
class DefinitionVersion:
    definition: BadgeDefinition
    created_by: str
    created_at: datetime


async def definition_versions(engine: AsyncEngine, badge_id: str) -> list[DefinitionVersion]:
    """Every version of the badge, oldest first (none: no such badge)."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                select(BadgeDefinitionVersion)
                .where(BadgeDefinitionVersion.badge_id == badge_id)
                .order_by(BadgeDefinitionVersion.version)
            )
        ).all()
        return [DefinitionVersion(to_definition(row), row.created_by, row.created_at) for row in rows]


async def _latest(connection: AsyncConnection, badge_id: str) -> Row[Any] | None:
    """The newest version's row (columns as attributes), or None."""
    return (
        await connection.execute(
            select(BadgeDefinitionVersion)
            .where(BadgeDefinitionVersion.badge_id == badge_id)
            .order_by(BadgeDefinitionVersion.version.desc())
            .limit(1)
        )
    ).first()


async def _append(connection: AsyncConnection, badge_id: str, version: int, spec: BadgeSpec, author: str) -> None:
    await connection.execute(
        insert(BadgeDefinitionVersion).values(
            badge_id=badge_id, version=version, spec=spec_document(spec), created_by=author
        )
    )


async def save_definition(
    engine: AsyncEngine, badge_id: str, spec: BadgeSpec, author: str
) -> tuple[BadgeDefinition, bool]:
    """Append a version unless the newest one already says exactly this (a repeated PUT).
    Returns the definition now in force and whether a version was added."""
    async with engine.begin() as connection:
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CATALOGUE_LOCK_KEY})
        latest = await _latest(connection, badge_id)
        if latest is not None and latest.spec == spec_document(spec):
            return to_definition(latest), False
        version = 1 if latest is None else latest.version + 1
        await _append(connection, badge_id, version, spec, author)
    return BadgeDefinition.from_spec(badge_id, version, spec), True


async def seed_catalogue(engine: AsyncEngine, catalogue: Catalogue) -> list[str]:
    """Load the shipped catalogue: badges the database lacks are added; a badge whose newest
    version came from the file and differs from it gets a new version; a badge an admin has
    changed since is left as the admin made it. Returns the badge ids written."""
    written: list[str] = []
    async with engine.begin() as connection:
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CATALOGUE_LOCK_KEY})
        for badge_id, spec in catalogue.badges.items():
            latest = await _latest(connection, badge_id)
            if latest is None:
                await _append(connection, badge_id, 1, spec, CATALOGUE_FILE_AUTHOR)
            elif latest.created_by == CATALOGUE_FILE_AUTHOR and latest.spec != spec_document(spec):
                await _append(connection, badge_id, latest.version + 1, spec, CATALOGUE_FILE_AUTHOR)
            else:
                continue
            written.append(badge_id)
    return written
