"""Per-owner AES-256-GCM data keys (the `data_keys` table), stored wrapped by a master key and cached
unwrapped in memory.

A member's key protects their Temporal payloads and sensitive columns. Destroying it (erasure)
makes every copy of what it protected unreadable.

`KeyStore` reads and creates keys with SQLAlchemy Core (a new member's key in the transaction that
creates the member); the master-key rotation (`rewrap_batch`, `keys_by_master`, run by
`python -m badges.cli.keys`) is hand-written on the pool that command opens.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cachetools import TTLCache
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import DateTime, Index, LargeBinary, String, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.config import read_master_keys_file
from badges.db.base import Base


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


log = logging.getLogger("badges.keys")

NONCE_BYTES = 12
# How often a process built from a master key ring file looks at the file for changes.
RING_CHECK_SECONDS = 30.0
# The key cache's defaults (`BADGES_KEY_CACHE_SECONDS`, `BADGES_KEY_CACHE_SIZE`). The age is how
# long a process trusts an unwrapped key without re-reading its row: a key destroyed by another
# process (erasure) stops working everywhere within this time. API and worker processes also
# forget a member's keys at once when the erasure is announced (OutboxHub.on_erasure in the API,
# `forget_erased_keys` in the worker). The size bounds memory: integrations can bring thousands
# of new members a minute, and a process keeps only the most recently used keys.
KEY_CACHE_SECONDS = 120.0
KEY_CACHE_SIZE = 50_000


class KeyUnavailableError(Exception):
    """A data key that does not exist, or was destroyed (the owner was erased)."""

    def __init__(self, key_ref: str) -> None:
        super().__init__(f"data key {key_ref} is not available")
        self.key_ref = key_ref


class MasterKeyUnavailableError(KeyUnavailableError):
    """A data key that exists, wrapped by a master key this process is not configured with: a
    deployment to fix, not a sign that the key (or what it sealed) is not ours."""


def is_key_id(key_id: str) -> bool:
    """Whether `key_id` has the shape of the ids `create_key` makes (32 lowercase hex digits).
    Key ids arrive in payload metadata, which anyone reaching Temporal can write: one of another
    shape is no key of ours, and is not worth a query (a NUL in it would fail one)."""
    return len(key_id) == 32 and all(c in "0123456789abcdef" for c in key_id)


# The bytes of a keyed digest (`KeyStore.digest`): 128 bits, plenty to tell one member's merchants apart.
DIGEST_BYTES = 16


def digest_key(raw: bytes) -> bytes:
    """The HMAC key derived from a data key (HKDF-SHA256), so digests and ciphertexts never share a key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"badges/digest/v1").derive(raw)


@dataclass(frozen=True)
class DataKeyMaterial:
    key_id: str
    owner: str
    aead: AESGCM
    mac_key: bytes = field(repr=False)  # for `digest`: `digest_key` of the raw key

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self.aead.encrypt(nonce, plaintext, self.key_id.encode())

    def decrypt(self, sealed: bytes) -> bytes:
        return self.aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self.key_id.encode())

    def digest(self, text: str) -> bytes:
        return hmac.new(self.mac_key, text.encode(), hashlib.sha256).digest()[:DIGEST_BYTES]


class MasterKeys:
    """Wraps and unwraps data keys. The first master key wraps; every listed key unwraps.

    Built from a key ring file (`from_file`: a secret store's mount, or `.data/master-keys` in
    dev) it follows the file: it reads it again when it changed, at most every
    `RING_CHECK_SECONDS`, and at once when a data key names a master key it does not hold. So a
    key the rotation schedule adds is readable everywhere as soon as anything wraps with it, and a
    key it destroys leaves every process's memory within that time."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        self.path: Path | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._checked = time.monotonic()
        self._use(keys)

    @classmethod
    def from_file(cls, path: str | Path) -> MasterKeys:
        path = Path(path)
        stamp = _file_stamp(path)  # before reading: a change in between is read again next time
        master = cls(read_master_keys_file(path))
        master.path, master._stamp = path, stamp
        return master

    @property
    def ids(self) -> list[str]:
        """The master keys held, the active one first."""
        return list(self._keys)

    def reload(self) -> bool:
        """Read the ring file again if it changed since it was read. True if it did."""
        if self.path is None:
            return False
        self._checked = time.monotonic()
        stamp = _file_stamp(self.path)
        if stamp == self._stamp:
            return False
        self._use(read_master_keys_file(self.path))
        self._stamp = stamp
        return True

    def wrap(self, data_key_id: str, data_key: bytes) -> tuple[str, bytes]:
        self._follow_file()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.active_id].encrypt(nonce, data_key, data_key_id.encode())
        return self.active_id, nonce + sealed

    def unwrap(self, master_key_id: str, data_key_id: str, wrapped: bytes) -> bytes:
        self._follow_file()
        master = self._keys.get(master_key_id)
        if master is None and self._reload_quietly():  # added to the ring since this process read it
            master = self._keys.get(master_key_id)
        if master is None:
            raise MasterKeyUnavailableError(f"{data_key_id} (master key {master_key_id} not configured)")
        return master.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], data_key_id.encode())

    def _use(self, keys: list[tuple[str, bytes]]) -> None:
        self._keys = {key_id: AESGCM(key) for key_id, key in keys}
        self.active_id = keys[0][0]

    def _follow_file(self) -> None:
        if self.path is not None and time.monotonic() - self._checked >= RING_CHECK_SECONDS:
            self._reload_quietly()

    def _reload_quietly(self) -> bool:
        """`reload`, keeping the keys held when the file cannot be read just now (being replaced
        by hand, a mount going away): reads and writes of data keys go on, and say so in the log."""
        try:
            return self.reload()
        except (OSError, ValueError):
            log.exception("master key ring %s unreadable; keeping the keys held", self.path)
            return False


def _file_stamp(path: Path) -> tuple[int, int, int]:
    """What changes when the ring file is replaced or rewritten."""
    status = path.stat()
    return status.st_ino, status.st_mtime_ns, status.st_size


@dataclass(frozen=True)
class KeyCacheStats:
    """What a process's key cache has done since it started: lookups answered from memory (hits)
    and from the database (misses), and how many keys it holds now, of at most `max_entries`."""

    hits: int
    misses: int
    entries: int
    max_entries: int
    max_age_seconds: float


class KeyStore:
    """Reads, creates and caches data keys. The cache holds at most `max_entries` keys, each for
    at most `max_age_seconds` after it was read (least recently used go first); `clock` is
    `time.monotonic` but for tests."""

    def __init__(
        self,
        engine: AsyncEngine,
        master_keys: MasterKeys,
        *,
        max_entries: int = KEY_CACHE_SIZE,
        max_age_seconds: float = KEY_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._master = master_keys
        self._max_age = max_age_seconds
        # Both maps are written together and read together (a lookup by id also reads the
        # owner's entry), so they age and fall out of use together. A key is used from memory
        # only while its owner's entry names it: forgetting an owner removes that entry, and the
        # owner's keys with it, whatever remains in `_by_id` until it is evicted.
        self._by_id: TTLCache[str, DataKeyMaterial] = TTLCache(max_entries, max_age_seconds, timer=clock)
        self._live_by_owner: TTLCache[str, str] = TTLCache(max_entries, max_age_seconds, timer=clock)
        self._generation = 0  # bumped by every forget: a read that raced one is not cached
        self._hits = 0
        self._misses = 0

    @property
    def master(self) -> MasterKeys:
        """The master keys that wrap this store's data keys (the rotation schedule re-reads them)."""
        return self._master

    async def create_key(self, connection: AsyncConnection, owner: str) -> DataKeyMaterial | None:
        """Create the owner's live key inside the caller's transaction, unless one exists.
        Returns the new key (None if the owner had one), for `remember_created` once committed."""
        key_id = uuid.uuid4().hex
        raw = AESGCM.generate_key(bit_length=256)
        master_id, wrapped = self._master.wrap(key_id, raw)
        created = await connection.scalar(
            insert(DataKey)
            .values(key_id=key_id, owner=owner, wrapped_key=wrapped, master_key_id=master_id)
            .on_conflict_do_nothing(index_elements=["owner"], index_where=DataKey.destroyed_at.is_(None))
            .returning(DataKey.key_id)
        )
        if not created:
            return None
        return DataKeyMaterial(key_id=key_id, owner=owner, aead=AESGCM(raw), mac_key=digest_key(raw))

    def remember_created(self, material: DataKeyMaterial) -> None:
        """Cache a key this process created, after the transaction that stored it committed: the
        new member's first payload is sealed without reading the row back."""
        self._keep(material, live=True)

    async def live_key(self, owner: str, *, create: bool = False) -> DataKeyMaterial:
        """The owner's current key. `create` makes one first if the owner has none (service keys)."""
        key_id = self._live_by_owner.get(owner)
        cached = self._by_id.get(key_id) if key_id is not None else None
        if cached is not None:
            self._hits += 1
            return cached
        self._misses += 1
        generation = self._generation
        async with self._engine.begin() as connection:
            row = await self._select_live(connection, owner)
            if row is None and create:
                await self.create_key(connection, owner)
                row = await self._select_live(connection, owner)
        if row is None:
            raise KeyUnavailableError(f"for owner {owner}")
        return self._remember(row, generation)

    async def key_by_id(self, key_id: str) -> DataKeyMaterial:
        cached = self._by_id.get(key_id)
        if cached is not None and self._live_by_owner.get(cached.owner) == key_id:
            self._hits += 1
            return cached
        if not is_key_id(key_id):
            raise KeyUnavailableError(repr(key_id[:40]))
        self._misses += 1
        generation = self._generation
        async with self._engine.connect() as connection:
            row = (await connection.execute(select(DataKey).where(DataKey.key_id == key_id))).one_or_none()
        if row is None or row.wrapped_key is None:
            raise KeyUnavailableError(key_id)
        return self._remember(row, generation)

    async def readable_key(self, key_id: str) -> DataKeyMaterial | None:
        """The key, or None when no such key exists or it was destroyed (what it sealed is then
        not to be trusted or cannot be read). Raises when it cannot tell: the database is
        unreachable, or the key's master key is not configured here."""
        try:
            return await self.key_by_id(key_id)
        except MasterKeyUnavailableError:
            raise
        except KeyUnavailableError:
            return None

    async def key_owners(self, key_ids: set[str]) -> dict[str, tuple[str, bool]]:
        """For each known key id: its owner and whether it is still readable (not destroyed).
        Read from the database every time, so a key destroyed by another process counts."""
        key_ids = {key_id for key_id in key_ids if is_key_id(key_id)}
        if not key_ids:
            return {}
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(DataKey.key_id, DataKey.owner, DataKey.wrapped_key).where(DataKey.key_id.in_(key_ids))
            )
            return {row.key_id: (row.owner, row.wrapped_key is not None) for row in rows}

    async def seal(self, owner: str, plaintext: bytes) -> bytes:
        """Encrypt a value (a sensitive column) with the owner's live key: `key id:ciphertext`,
        so it opens with whatever key sealed it, and never once the owner's key is destroyed."""
        key = await self.live_key(owner)
        return key.key_id.encode() + b":" + key.encrypt(plaintext)

    async def digest(self, owner: str, text: str) -> bytes:
        """A keyed digest of `text` under the owner's live key (HMAC-SHA256 with a key derived from
        it): the same text gives the same digest for the same owner, so it can be matched without
        being held; it says nothing to anyone without the key, nor across owners, and nothing at
        all once the owner's key is destroyed."""
        return (await self.live_key(owner)).digest(text)

    async def digests(self, owner: str, texts: Sequence[str]) -> list[bytes]:
        """`digest` of each of `texts`, in order (the key looked up once)."""
        key = await self.live_key(owner)
        return [key.digest(text) for text in texts]

    async def unseal(self, sealed: bytes) -> bytes:
        key_id, _, ciphertext = bytes(sealed).partition(b":")
        return (await self.key_by_id(key_id.decode())).decrypt(ciphertext)

    def forget(self, owner: str) -> None:
        """Drop an owner's keys from memory (after erasure destroyed them): at once, and in
        constant time, however many keys the cache holds."""
        self._generation += 1
        key_id = self._live_by_owner.pop(owner, None)
        if key_id is not None:
            self._by_id.pop(key_id, None)

    def forget_all(self) -> None:
        self._generation += 1
        self._live_by_owner.clear()
        self._by_id.clear()

    def cache_stats(self) -> KeyCacheStats:
        """Read only (a metrics thread may call it): `entries` counts expired keys too until the
        next write drops them."""
        return KeyCacheStats(
            hits=self._hits,
            misses=self._misses,
            entries=len(self._by_id),
            max_entries=int(self._by_id.maxsize),
            max_age_seconds=self._max_age,
        )

    @staticmethod
    async def _select_live(connection: AsyncConnection, owner: str):  # type: ignore[no-untyped-def]
        query = select(DataKey).where(DataKey.owner == owner, DataKey.destroyed_at.is_(None))
        return (await connection.execute(query)).one_or_none()

    def _remember(self, row, generation: int) -> DataKeyMaterial:  # type: ignore[no-untyped-def]
        """The key of a row read while the forget count was `generation`; cached only if no
        forget came in between (it may have been this key's erasure, read just before)."""
        if row.wrapped_key is None:
            raise KeyUnavailableError(row.key_id)
        raw = self._master.unwrap(row.master_key_id, row.key_id, row.wrapped_key)
        material = DataKeyMaterial(key_id=row.key_id, owner=row.owner, aead=AESGCM(raw), mac_key=digest_key(raw))
        if generation == self._generation:
            # The owner's live key, however it was read: a worker that decoded a member's first
            # payload encodes the next without reading the row again.
            self._keep(material, live=row.destroyed_at is None)
        return material

    def _keep(self, material: DataKeyMaterial, *, live: bool) -> None:
        if not live:
            return  # never used from memory (a lookup needs its owner's entry to name it)
        self._by_id[material.key_id] = material
        self._live_by_owner[material.owner] = material.key_id


async def rewrap_batch(pool: AsyncConnectionPool, master: MasterKeys, limit: int) -> tuple[int, int]:
    """Re-wrap up to `limit` live data keys that another master key wraps with the active one.
    Each key is updated only if nothing changed it meanwhile (destroyed, or re-wrapped by a
    concurrent run). Returns (keys looked at, keys re-wrapped); none looked at: none is left."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT key_id, master_key_id, wrapped_key FROM data_keys"
            " WHERE wrapped_key IS NOT NULL AND master_key_id <> %s ORDER BY key_id LIMIT %s",
            (master.active_id, limit),
        )
        rows = await cursor.fetchall()
        rewrapped = 0
        for key_id, old_master, wrapped in rows:
            try:
                raw = master.unwrap(old_master, key_id, bytes(wrapped))
            except InvalidTag as error:  # the listed key with that id is not the one that wrapped it
                raise KeyUnavailableError(f"{key_id} (master key {old_master} does not open it)") from error
            new_master, new_wrapped = master.wrap(key_id, raw)
            cursor = await connection.execute(
                "UPDATE data_keys SET wrapped_key = %s, master_key_id = %s"
                " WHERE key_id = %s AND master_key_id = %s AND wrapped_key = %s",
                (new_wrapped, new_master, key_id, old_master, wrapped),
            )
            rewrapped += cursor.rowcount
    return len(rows), rewrapped


async def keys_by_master(pool: AsyncConnectionPool) -> dict[str, int]:
    """How many live data keys each master key wraps."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT master_key_id, count(*) FROM data_keys WHERE wrapped_key IS NOT NULL GROUP BY 1 ORDER BY 1"
        )
        return {master_id: int(count) for master_id, count in await cursor.fetchall()}
