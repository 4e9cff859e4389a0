"""Comparative badges a peer-statistics release awarded (`peer_awards`): one row per release,
member and badge, written once (its primary key), and marked when handed to the member's badge
workflow. A retried award step finds what it decided and sends only what was not sent.

Hand-written on the psycopg pool, in batches (a release may award thousands of members)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import ARRAY, DateTime, ForeignKey, Integer, String
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


async def unsent_peer_awards(pool: AsyncConnectionPool, release_id: uuid.UUID, limit: int) -> list[PeerAward]:
    """Up to `limit` of the release's awards not yet handed over."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT user_id, badge_id, version, instances, decided FROM peer_awards"
            " WHERE release_id = %s AND sent_at IS NULL ORDER BY user_id, badge_id LIMIT %s",
            (release_id, limit),
        )
        return [PeerAward(*row) for row in await cursor.fetchall()]


async def mark_peer_awards_sent(
    pool: AsyncConnectionPool, release_id: uuid.UUID, awards: Sequence[PeerAward], now: datetime
) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE peer_awards p SET sent_at = %s FROM unnest(%s::uuid[], %s::text[]) AS a(user_id, badge_id)"
            " WHERE p.release_id = %s AND p.user_id = a.user_id AND p.badge_id = a.badge_id AND p.sent_at IS NULL",
            (now, [a.user_id for a in awards], [a.badge_id for a in awards], release_id),
        )


async def release_awards(pool: AsyncConnectionPool, release_id: uuid.UUID) -> list[tuple[PeerAward, bool]]:
    """Every award of the release, and whether it was sent."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT user_id, badge_id, version, instances, decided, sent_at IS NOT NULL FROM peer_awards"
            " WHERE release_id = %s ORDER BY user_id, badge_id",
            (release_id,),
        )
        return [(PeerAward(*row[:5]), row[5]) for row in await cursor.fetchall()]
