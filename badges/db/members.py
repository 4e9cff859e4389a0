"""Members: the internal UUIDs behind token subjects, their time zones and sealed demographics.
(Their wrapped data keys are in `db/keys.py`.)"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, LargeBinary, String, cast, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.db.consents import Consent
from badges.db.erasure import ErasedSubject
from badges.db.keys import DataKey, DataKeyMaterial, KeyStore


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


class SubjectErased(Exception):
    """The subject was erased: refused for good."""


@dataclass(frozen=True, slots=True)
class ResolvedMember:
    id: uuid.UUID
    timezone: str | None
    # The data key made for a member created by this call: for `KeyStore.remember_created`.
    created_key: DataKeyMaterial | None


async def resolve_subject(engine: AsyncEngine, keys: KeyStore, digest: bytes) -> ResolvedMember:
    """The member with this subject digest, created with their data key on first sight (in one
    transaction). Raises `SubjectErased` for a subject whose erasure has begun."""
    by_digest = select(Member.id, Member.timezone).where(Member.subject_digest == digest)
    created_key: DataKeyMaterial | None = None
    async with engine.begin() as connection:
        erased = await connection.scalar(select(ErasedSubject.erased_at).where(ErasedSubject.subject_digest == digest))
        if erased is not None:
            raise SubjectErased()
        # With the time zone: the member's first event then needs no query of its own.
        found = (await connection.execute(by_digest)).one_or_none()
        if found is None:
            member_id = await connection.scalar(
                insert(Member)
                .values(id=uuid.uuid4(), subject_digest=digest)
                .on_conflict_do_nothing(index_elements=[Member.subject_digest])
                .returning(Member.id)
            )
            if member_id is None:  # another request created them first
                found = (await connection.execute(by_digest)).one()
            else:
                created_key = await keys.create_key(connection, str(member_id))
                found = (member_id, None)
        member_id, zone = found
    return ResolvedMember(member_id, zone, created_key)


async def member_timezone(engine: AsyncEngine, member_id: uuid.UUID) -> str | None:
    async with engine.connect() as connection:
        return await connection.scalar(select(Member.timezone).where(Member.id == member_id))


async def set_member_timezone(engine: AsyncEngine, member_id: uuid.UUID, zone: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(update(Member).where(Member.id == member_id).values(timezone=zone))


async def save_demographics(
    engine: AsyncEngine, keys: KeyStore, member_id: uuid.UUID, demographics: dict[str, Any] | None
) -> bool:
    """Store the member's demographics sealed with their key, only while `demographics` consent
    is active; None deletes them. False when there was no consent.

    The member's row is locked before the consent is read, as `record_consent` locks it before
    changing a consent: a revocation either commits first (and this sees it) or waits for this
    write (and then deletes what it wrote)."""
    sealed = None
    if demographics is not None:
        sealed = await keys.seal(str(member_id), json.dumps(demographics, sort_keys=True).encode())
    async with engine.begin() as connection:
        await connection.execute(select(Member.id).where(Member.id == member_id).with_for_update(key_share=True))
        if sealed is not None:
            consent = await connection.scalar(
                select(Consent.user_id).where(
                    Consent.user_id == member_id,
                    Consent.scope == "demographics",
                    Consent.revoked_at.is_(None),
                    Consent.expires_at > func.now(),
                )
            )
            if consent is None:
                return False
        await connection.execute(update(Member).where(Member.id == member_id).values(demographics=sealed))
        return True


async def load_demographics(engine: AsyncEngine, keys: KeyStore, member_id: uuid.UUID) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        sealed = await connection.scalar(select(Member.demographics).where(Member.id == member_id))
    if sealed is None:
        return None
    return json.loads(await keys.unseal(sealed))  # type: ignore[no-any-return]


async def reachable_members(engine: AsyncEngine, member_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Those of `member_ids` whose workflow may still be started or signalled: the member has a
    row, their erasure has not begun (no tombstone on their subject) and their data key is live.
    Read from the database every time (no cache), so an erasure by any process counts."""
    if not member_ids:
        return set()
    erased = exists().where(ErasedSubject.subject_digest == Member.subject_digest)
    live_key = exists().where(DataKey.owner == cast(Member.id, String), DataKey.destroyed_at.is_(None))
    query = select(Member.id).where(Member.id.in_(list(member_ids)), ~erased, live_key)
    async with engine.connect() as connection:
        return set((await connection.scalars(query)).all())
