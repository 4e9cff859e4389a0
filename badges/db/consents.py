"""Consent as the database sees it: a projection of each member's `ConsentWorkflow`, which holds
the truth, so API paths and activities can check a scope with one read.

Hand-written on the psycopg pool: a consent change locks the member, projects the consent,
deletes what the scope alone justified, appends the outbox insight and the audit record in one
transaction (`activities/consent.py`), which the engine would split from the outbox and audit
writes; `has_consent` is read by activities that hold only the pool."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base


class Consent(Base):
    __tablename__ = "consents"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    purpose: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(
            "scope IN ('open_banking', 'behaviour_tracking', 'peer_comparison', 'demographics')", name="scope"
        ),
    )


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    scope: str
    purpose: str
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


async def member_consents(pool: AsyncConnectionPool, user_id: uuid.UUID) -> list[ConsentRecord]:
    """Every consent the member has given, active or not, by scope."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT scope, purpose, granted_at, expires_at, revoked_at FROM consents WHERE user_id = %s ORDER BY scope",
            (user_id,),
        )
        return [ConsentRecord(*row) for row in await cur.fetchall()]


UPSERT = """
INSERT INTO consents (user_id, scope, purpose, granted_at, expires_at, revoked_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, now())
ON CONFLICT (user_id, scope) DO UPDATE SET purpose = excluded.purpose, granted_at = excluded.granted_at,
    expires_at = excluded.expires_at, revoked_at = excluded.revoked_at, updated_at = now()
"""


async def lock_member(connection: AsyncConnection[Any], user_id: uuid.UUID) -> None:
    """Lock the member's row inside the caller's transaction, as every consent change does first.

    NO KEY UPDATE serialises a consent change with a demographics write or a bank link (which
    take it first too) and an erasure (whose DELETE waits for it), and lets progress writes
    (which need a KEY SHARE on the row) through."""
    await connection.execute("SELECT 1 FROM members WHERE id = %s FOR NO KEY UPDATE", (user_id,))


async def upsert_consent(
    connection: AsyncConnection[Any],
    user_id: uuid.UUID,
    scope: str,
    *,
    purpose: str,
    granted_at: datetime,
    expires_at: datetime,
    revoked_at: datetime | None,
) -> None:
    """Project one consent's state into `consents`, inside the caller's transaction."""
    await connection.execute(UPSERT, (user_id, scope, purpose, granted_at, expires_at, revoked_at))


async def consenting_members(
    pool: AsyncConnectionPool, user_ids: Collection[uuid.UUID], scope: str, now: datetime
) -> set[uuid.UUID]:
    """Those of `user_ids` whose grant of `scope` is active now."""
    if not user_ids:
        return set()
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT user_id FROM consents WHERE user_id = ANY(%s) AND scope = %s AND revoked_at IS NULL"
            " AND expires_at > %s",
            (list(user_ids), scope, now),
        )
        return {row[0] for row in await cur.fetchall()}


async def has_consent(pool: AsyncConnectionPool, user_id: uuid.UUID, scope: str, now: datetime) -> bool:
    """Whether the member's grant of `scope` is active: not revoked and not yet expired."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT 1 FROM consents WHERE user_id = %s AND scope = %s AND revoked_at IS NULL AND expires_at > %s",
            (user_id, scope, now),
        )
        return await cur.fetchone() is not None


# What each scope alone justifies holding: deleted, in the transaction that records the
# revocation or expiry. (Bank connections are first revoked at their providers by the consent
# workflow; this deletes whatever is left.) Behaviour tracking and peer comparison add their data
# here as it comes to exist.
SCOPE_DATA: dict[str, tuple[str, ...]] = {
    # What the member's behaviour evaluation derived (figures, score, predictions, patterns put to
    # reviewers), and the goals it tracks for them.
    "behaviour_tracking": (
        "DELETE FROM member_insights WHERE user_id = %s",
        "DELETE FROM member_goals WHERE user_id = %s",
        "DELETE FROM review_queue WHERE user_id = %s AND kind = 'financial'",
        # The peer-statistics inputs are figures the evaluation derived.
        "DELETE FROM peer_inputs WHERE user_id = %s",
    ),
    # What the next peer-statistics release would read about the member (`db/peers.py`).
    # And what the newest contacts release decided about the member's contacts group (the group's
    # key stays: the connections are the members' own, held while they keep them).
    "peer_comparison": (
        "DELETE FROM peer_inputs WHERE user_id = %s",
        "UPDATE contact_groups SET release_id = NULL, status = NULL, reason = NULL, noisy_count = NULL"
        " WHERE user_id = %s AND status IS NOT NULL",
    ),
    "demographics": (
        "UPDATE members SET demographics = NULL WHERE id = %s AND demographics IS NOT NULL",
        # The peer groups drawn from them.
        "UPDATE peer_inputs SET postcode_district = NULL, age_range = NULL, dependants = NULL,"
        " salary_bracket = NULL WHERE user_id = %s",
    ),
    # Corrections name the member's merchants (sealed, and by digest): bank data too.
    "open_banking": (
        "DELETE FROM bank_connections WHERE user_id = %s",
        "DELETE FROM category_corrections WHERE user_id = %s",
    ),
}


async def delete_scope_data(connection: AsyncConnection[Any], user_id: uuid.UUID, scope: str) -> int:
    """Delete what only `scope` justified holding about the member; returns the rows changed."""
    changed = 0
    for statement in SCOPE_DATA.get(scope, ()):
        changed += (await connection.execute(statement, (user_id,))).rowcount
    return changed
