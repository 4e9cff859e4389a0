"""Comparative badges a peer-statistics release awarded (`peer_awards`): one row per release,
member and badge, written once (its primary key), and marked when handed to the member's badge
workflow (`sent_at`), or when it was not delivered after all (`dropped_at`, with the reason: the
member withdrew consent or began their erasure before it was sent, or their badge workflow
found the badge changed since the release decided). A retried award step finds what it decided
and sends only what was neither sent nor dropped.

Hand-written on the psycopg pool, in batches (a release may award thousands of members)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import ARRAY, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base


class PeerAwardRow(Base):
    __tablename__ = "peer_awards"

    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("privacy_ledger.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    badge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    instances: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    # What decided it: the member's value, their estimated percentile and its interval, the group.
    decided: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dropped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dropped_reason: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True, slots=True)
class PeerAward:
    user_id: uuid.UUID
    badge_id: str
    version: int
    instances: list[str]
    decided: dict[str, Any]


async def keep_peer_awards(
    pool: AsyncConnectionPool, release_id: uuid.UUID, awards: Sequence[PeerAward], now: datetime
) -> int:
    """Record the release's awards; those recorded before (a retried step) are left as they
    were. How many were new."""
    if not awards:
        return 0
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(
            "INSERT INTO peer_awards (release_id, user_id, badge_id, version, instances, decided, decided_at)"
            " SELECT %s, a.user_id, a.badge_id, a.version, a.instances::text[], a.decided, %s"
            " FROM unnest(%s::uuid[], %s::text[], %s::int[], %s::text[], %s::jsonb[])"
            "   AS a(user_id, badge_id, version, instances, decided)"
            " ON CONFLICT (release_id, user_id, badge_id) DO NOTHING",
            (
                release_id,
                now,
                [a.user_id for a in awards],
                [a.badge_id for a in awards],
                [a.version for a in awards],
                # text[] of a literal per row: unnest cannot take a ragged 2-D array
                ["{" + ",".join(a.instances) + "}" for a in awards],
                [Jsonb(a.decided) for a in awards],
            ),
        )
        return cursor.rowcount


async def unsent_peer_awards(
    pool: AsyncConnectionPool, release_id: uuid.UUID, after: tuple[uuid.UUID, str] | None, limit: int
) -> list[PeerAward]:
    """Up to `limit` of the release's awards neither handed over nor dropped, by (member, badge)
    after `after` (None: from the first)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT user_id, badge_id, version, instances, decided FROM peer_awards"
            " WHERE release_id = %s AND sent_at IS NULL AND dropped_at IS NULL AND (user_id, badge_id) > (%s, %s)"
            " ORDER BY user_id, badge_id LIMIT %s",
            (release_id, *(after or (uuid.UUID(int=0), "")), limit),
        )
        return [PeerAward(*row) for row in await cursor.fetchall()]


async def mark_peer_awards_sent(
    pool: AsyncConnectionPool, release_id: uuid.UUID, awards: Sequence[PeerAward], now: datetime
) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE peer_awards p SET sent_at = %s FROM unnest(%s::uuid[], %s::text[]) AS a(user_id, badge_id)"
            " WHERE p.release_id = %s AND p.user_id = a.user_id AND p.badge_id = a.badge_id AND p.sent_at IS NULL"
            " AND p.dropped_at IS NULL",
            (now, [a.user_id for a in awards], [a.badge_id for a in awards], release_id),
        )


async def drop_peer_awards(
    pool: AsyncConnectionPool,
    release_id: uuid.UUID,
    dropped: Sequence[tuple[uuid.UUID, str, str]],
    now: datetime,
) -> int:
    """Record that these awards of the release, (member, badge, why), were not delivered: the
    first reason recorded stands. A row deleted meanwhile (the member's erasure) is nothing to
    record. How many were marked."""
    if not dropped:
        return 0
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "UPDATE peer_awards p SET dropped_at = %s, dropped_reason = a.reason"
            " FROM unnest(%s::uuid[], %s::text[], %s::text[]) AS a(user_id, badge_id, reason)"
            " WHERE p.release_id = %s AND p.user_id = a.user_id AND p.badge_id = a.badge_id AND p.dropped_at IS NULL",
            (now, [d[0] for d in dropped], [d[1] for d in dropped], [d[2] for d in dropped], release_id),
        )
        return cursor.rowcount


@dataclass(frozen=True, slots=True)
class PeerAwardRecord:
    """An award of a release and what became of it: `unsent`, `sent` (handed to the member's badge
    workflow, which recorded it or already had it) or `dropped` (`reason` says why it was not
    delivered; an award the workflow dropped after it was handed over was sent and dropped)."""

    award: PeerAward
    status: str
    reason: str | None


async def release_awards(pool: AsyncConnectionPool, release_id: uuid.UUID) -> list[PeerAwardRecord]:
    """Every award of the release, and what became of it."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT user_id, badge_id, version, instances, decided, sent_at IS NOT NULL, dropped_at IS NOT NULL,"
            " dropped_reason FROM peer_awards WHERE release_id = %s ORDER BY user_id, badge_id",
            (release_id,),
        )
        return [
            PeerAwardRecord(PeerAward(*row[:5]), "dropped" if row[6] else "sent" if row[5] else "unsent", row[7])
            for row in await cursor.fetchall()
        ]
