"""Members: the internal random UUID behind each token subject, created on first sight with its key."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from badges.api.problems import Problem
from badges.db.keys import KeyStore
from badges.db.members import SubjectErased, member_timezone, resolve_subject, set_member_timezone

CACHE_LIMIT = 100_000
# A time zone changed through another API process reaches this one's events within this time.
TIMEZONE_CACHE_SECONDS = 60.0
# The longest an erasure can go unnoticed by a process that missed its notice (the hub was
# reconnecting, say): cached members are looked up again after this.
MEMBER_CACHE_SECONDS = 60.0
# Members looked up in the database at once by one process (a first sight writes the member and
# their data key in one transaction). Many streams open at once (a reconnect storm after a
# restart, a ramp of thousands) would otherwise take every connection the SQLAlchemy pool may
# open, overflow included, in every API process together, past PostgreSQL's `max_connections`:
# the rest wait here, holding no connection, and open a moment later instead of being refused.
# A lookup takes a few milliseconds, so 4 serve hundreds of new connections a second.
LOOKUPS_AT_ONCE = 4


def erased_problem() -> Problem:
    return Problem(410, "member-erased", "This membership has been erased; nothing is held for it any more.")


class MemberDirectory:
    def __init__(
        self, engine: AsyncEngine, keys: KeyStore, pepper: str, *, lookups_at_once: int = LOOKUPS_AT_ONCE
    ) -> None:
        self._engine = engine
        self._keys = keys
        self._pepper = pepper.encode()
        # digest -> (member id, when cached). Entries expire, and an erasure anywhere clears them
        # (OutboxHub.on_erasure; everything on the hub's reconnect, when notices may be lost).
        self._cache: dict[bytes, tuple[uuid.UUID, float]] = {}
        self._generation = 0  # bumped by every forget: a lookup that raced one is not cached
        self._timezones: dict[uuid.UUID, tuple[str, float]] = {}
        self._lookups = asyncio.Semaphore(lookups_at_once)

    def digest(self, subject: str) -> bytes:
        return hmac.new(self._pepper, subject.encode(), hashlib.sha256).digest()

    async def resolve(self, subject: str) -> uuid.UUID:
        """The member's internal id, creating the member and their data key on first sight.

        An erased subject answers 410 from the moment its erasure begins, for good.
        """
        digest = self.digest(subject)
        cached = self._cached(digest)
        if cached is not None:
            return cached
        async with self._lookups:
            # Another of the same member's streams may have looked them up while this one waited.
            cached = self._cached(digest)
            if cached is not None:
                return cached
            generation = self._generation
            try:
                member = await resolve_subject(self._engine, self._keys, digest)
            except SubjectErased:
                raise erased_problem() from None
        if member.created_key is not None:
            self._keys.remember_created(member.created_key)
        member_id, zone = member.id, member.timezone
        if generation == self._generation:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[digest] = (member_id, time.monotonic())
            self._remember_timezone(member_id, zone or "UTC")
        return member_id

    def _cached(self, digest: bytes) -> uuid.UUID | None:
        cached = self._cache.get(digest)
        if cached is not None and time.monotonic() - cached[1] < MEMBER_CACHE_SECONDS:
            return cached[0]
        return None

    def forget(self, owner: str) -> None:
        """Drop what this process cached about a member (their erasure began or ended)."""
        self._generation += 1
        for digest in [digest for digest, (member_id, _) in self._cache.items() if str(member_id) == owner]:
            del self._cache[digest]
        with contextlib.suppress(ValueError):
            self._timezones.pop(uuid.UUID(owner), None)

    def forget_all(self) -> None:
        self._generation += 1
        self._cache.clear()
        self._timezones.clear()

    async def timezone(self, member_id: uuid.UUID) -> str:
        """The member's IANA time zone (their calendar day for streaks)."""
        cached = self._timezones.get(member_id)
        if cached is not None and time.monotonic() - cached[1] < TIMEZONE_CACHE_SECONDS:
            return cached[0]
        zone = await member_timezone(self._engine, member_id)
        return self._remember_timezone(member_id, zone or "UTC")

    async def set_timezone(self, member_id: uuid.UUID, zone: str) -> None:
        await set_member_timezone(self._engine, member_id, zone)
        self._remember_timezone(member_id, zone)

    def _remember_timezone(self, member_id: uuid.UUID, zone: str) -> str:
        if len(self._timezones) >= CACHE_LIMIT:
            self._timezones.clear()
        self._timezones[member_id] = (zone, time.monotonic())
        return zone
