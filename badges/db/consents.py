"""Consent as the database sees it: a projection of each member's `ConsentWorkflow`, which holds
the truth, so API paths and activities can check a scope with one read."""

from __future__ import annotations

import uuid
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
    "demographics": ("UPDATE members SET demographics = NULL WHERE id = %s AND demographics IS NOT NULL",),
    "open_banking": ("DELETE FROM bank_connections WHERE user_id = %s",),
}


async def delete_scope_data(connection: AsyncConnection[Any], user_id: uuid.UUID, scope: str) -> int:
    """Delete what only `scope` justified holding about the member; returns the rows changed."""
    changed = 0
    for statement in SCOPE_DATA.get(scope, ()):
        changed += (await connection.execute(statement, (user_id,))).rowcount
    return changed
