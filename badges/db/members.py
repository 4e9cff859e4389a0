"""Members (internal UUIDs behind token subjects) and their wrapped data keys."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import DateTime, Index, LargeBinary, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base

if TYPE_CHECKING:
    from badges.db.keys import KeyStore


class Member(Base):
    __tablename__ = "members"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # HMAC-SHA256 of the token's `sub` under the identity pepper: looks a member up without
    # storing the sub, which may be an email address.
    subject_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # IANA zone for calendar rules (streaks): a member's "day" is their local day.
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    # Demographics (postcode, age range, dependants, salary bracket) as JSON sealed with the
    # member's key (`KeyStore.seal`); only held while `demographics` consent is active.
    demographics: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DataKey(Base):
    """An AES-256-GCM data key, stored only wrapped by a master key. One live key per owner."""

    __tablename__ = "data_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))  # a member UUID, or "service"
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)  # NULL once destroyed
    master_key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    destroyed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_data_keys_live_owner", "owner", unique=True, postgresql_where=text("destroyed_at IS NULL")),
    )


async def save_demographics(
    pool: AsyncConnectionPool, keys: KeyStore, member_id: uuid.UUID, demographics: dict[str, Any] | None
) -> bool:
    """Store the member's demographics sealed with their key, only while `demographics` consent
    is active; None deletes them. False when there was no consent.

    The member's row is locked before the consent is read, as `record_consent` locks it before
    changing a consent: a revocation either commits first (and this sees it) or waits for this
    write (and then deletes what it wrote)."""
    sealed = None
    if demographics is not None:
        sealed = await keys.seal(str(member_id), json.dumps(demographics, sort_keys=True).encode())
    async with pool.connection() as connection, connection.transaction():
        await connection.execute("SELECT 1 FROM members WHERE id = %s FOR NO KEY UPDATE", (member_id,))
        if sealed is not None:
            cursor = await connection.execute(
                "SELECT 1 FROM consents WHERE user_id = %s AND scope = 'demographics' AND revoked_at IS NULL"
                " AND expires_at > now()",
                (member_id,),
            )
            if await cursor.fetchone() is None:
                return False
        await connection.execute("UPDATE members SET demographics = %s WHERE id = %s", (sealed, member_id))
        return True


async def load_demographics(pool: AsyncConnectionPool, keys: KeyStore, member_id: uuid.UUID) -> dict[str, Any] | None:
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT demographics FROM members WHERE id = %s", (member_id,))
        row = await cursor.fetchone()
    if row is None or row[0] is None:
        return None
    return json.loads(await keys.unseal(row[0]))  # type: ignore[no-any-return]
