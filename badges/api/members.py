"""Members: the internal random UUID behind each token subject, created on first sight with its key."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.db.keys import KeyStore
from badges.db.members import Member

CACHE_LIMIT = 100_000
# A time zone changed through another API process reaches this one's events within this time.
TIMEZONE_CACHE_SECONDS = 60.0


class MemberDirectory:
    def __init__(self, engine: AsyncEngine, keys: KeyStore, pepper: str) -> None:
        self._engine = engine
        self._keys = keys
        self._pepper = pepper.encode()
        self._cache: dict[bytes, uuid.UUID] = {}
        self._timezones: dict[uuid.UUID, tuple[str, float]] = {}

    def digest(self, subject: str) -> bytes:
        return hmac.new(self._pepper, subject.encode(), hashlib.sha256).digest()

    async def resolve(self, subject: str) -> uuid.UUID:
        """The member's internal id, creating the member and their data key on first sight."""
        digest = self.digest(subject)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        async with self._engine.begin() as connection:
            member_id = await connection.scalar(select(Member.id).where(Member.subject_digest == digest))
            if member_id is None:
                member_id = await connection.scalar(
                    insert(Member)
                    .values(id=uuid.uuid4(), subject_digest=digest)
                    .on_conflict_do_nothing(index_elements=[Member.subject_digest])
                    .returning(Member.id)
                )
                if member_id is None:  # another request created them first
                    member_id = await connection.scalar(select(Member.id).where(Member.subject_digest == digest))
                else:
                    await self._keys.create_key(connection, str(member_id))
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[digest] = member_id
        return member_id

    async def timezone(self, member_id: uuid.UUID) -> str:
        """The member's IANA time zone (their calendar day for streaks)."""
        cached = self._timezones.get(member_id)
        if cached is not None and time.monotonic() - cached[1] < TIMEZONE_CACHE_SECONDS:
            return cached[0]
        async with self._engine.connect() as connection:
            zone = await connection.scalar(select(Member.timezone).where(Member.id == member_id))
        return self._remember_timezone(member_id, zone or "UTC")

    async def set_timezone(self, member_id: uuid.UUID, zone: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(update(Member).where(Member.id == member_id).values(timezone=zone))
        self._remember_timezone(member_id, zone)

    def _remember_timezone(self, member_id: uuid.UUID, zone: str) -> str:
        if len(self._timezones) >= CACHE_LIMIT:
            self._timezones.clear()
        self._timezones[member_id] = (zone, time.monotonic())
        return zone
