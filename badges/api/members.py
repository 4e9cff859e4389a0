"""Members: the internal random UUID behind each token subject, created on first sight with its key."""

from __future__ import annotations

import hashlib
import hmac
import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.db.keys import KeyStore
from badges.db.members import Member

CACHE_LIMIT = 100_000


class MemberDirectory:
    def __init__(self, engine: AsyncEngine, keys: KeyStore, pepper: str) -> None:
        self._engine = engine
        self._keys = keys
        self._pepper = pepper.encode()
        self._cache: dict[bytes, uuid.UUID] = {}

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
