"""The master keys' life: made, active (wrapping new data keys), retired (wrapping no data key any
more, kept only so that a backup taken before can still be restored), destroyed. The `master_keys`
table records when each step happened (ids and times only: the key material lives in the key ring,
outside the database and its backups); `rotate_due` takes whatever steps are due.

Why destroy: a backup of the database holds each member's data key wrapped by the master key of
the day. After an erasure the live row is gone, but the backup's copy still opens with that master
key. Once the master key is destroyed, nothing can open it: a member's sealed data in any copy is
unreadable at most `rotate_after + destroy_after` after their erasure (the active key is replaced
within `rotate_after`, and destroyed `destroy_after` later, when backups that need it are gone).

Hand-written on the psycopg pool, as the data keys' rotation (`keys.rewrap_batch`) is: the run
holds a session advisory lock so that one rotation happens at a time, and writes its audit records
with `append_audit`.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

from badges.config import Settings, read_master_keys_file
from badges.db.audit import append_audit
from badges.db.base import Base
from badges.db.keys import KeyUnavailableError, MasterKeys, keys_by_master, rewrap_batch

# Any constant: one rotation at a time, whichever process runs it ("mkrotate" in ASCII).
ROTATION_LOCK_KEY = 0x6D6B726F74617465
REWRAP_BATCH = 500


class MasterKeyRecord(Base):
    """A master key's life, by id. No key material: that is in the key ring only."""

    __tablename__ = "master_keys"

    master_key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # When it became the wrapping key (first in the ring); the rotation clock starts here.
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When no data key was wrapped by it any more; destroyed `destroy_after` later.
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    destroyed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class KeyPolicy:
    rotate_after: timedelta  # BADGES_MASTER_KEY_ROTATION_DAYS
    destroy_after: timedelta  # BADGES_BACKUP_RETENTION_DAYS: a retired key outlives every backup that needs it

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyPolicy:
        return cls(timedelta(days=settings.master_key_rotation_days), timedelta(days=settings.backup_retention_days))


def configured_master_keys(settings: Settings) -> MasterKeys:
    """The master keys as the settings give them: a ring file, followed as it changes, or the
    environment's list."""
    if settings.master_keys_file:
        return MasterKeys.from_file(settings.master_keys_file)
    return MasterKeys(settings.parsed_master_keys)


@dataclass(frozen=True)
class MasterKeyState:
    master_key_id: str
    activated_at: datetime | None
    retired_at: datetime | None
    destroyed_at: datetime | None
    data_keys: int  # live data keys it wraps
    configured: bool  # in the ring this process holds


@dataclass
class RotationReport:
    """What one run did, and what is due that it could not do (a ring from the environment)."""

    active: str
    rotated_from: str | None = None
    rewrapped: int = 0
    retired: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    rotation_due: bool = False  # the ring is not a file: add a key by hand (docs/operations.md)
    destruction_due: list[str] = field(default_factory=list)  # likewise: remove these by hand
    busy: bool = False  # another run held the lock
    ring_unwritable: str | None = None  # the ring file could not be rewritten here (mounted read-only)
    error: str | None = None  # a data key no configured master key opens: nothing retired or destroyed
    keys: list[MasterKeyState] = field(default_factory=list)


def new_master_key(now: datetime) -> tuple[str, bytes]:
    """A fresh AES-256 master key; its id says when it was made."""
    return f"mk-{now:%Y%m%d}-{secrets.token_hex(4)}", secrets.token_bytes(32)


def format_master_key(key_id: str, key: bytes) -> str:
    return f"{key_id}:{base64.b64encode(key).decode()}"


def write_key_ring(path: Path, keys: list[tuple[str, bytes]]) -> None:
    """Replace the ring file at once (readers see the old file or the new, never half of one),
    readable by its owner only from the moment it exists."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write("# Badges master keys: the first wraps new data keys, every one unwraps.\n")
            file.writelines(format_master_key(key_id, key) + "\n" for key_id, key in keys)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


async def rotate_due(pool: AsyncConnectionPool, master: MasterKeys, policy: KeyPolicy, now: datetime) -> RotationReport:
    """Take every step of the master keys' life that is due at `now`:

    1. record the ring's keys (the active one's rotation clock starts when first seen active);
    2. the active key older than `rotate_after`: a new key goes first in the ring file;
    3. re-wrap every live data key under the active key;
    4. a key that was active and now wraps no data key is retired;
    5. a key retired `destroy_after` ago is removed from the ring file: destroyed.

    Steps 2 and 5 rewrite the ring, so they need it to be a file this process may write
    (`MasterKeys.from_file`); otherwise (the environment, a read-only mount) they are reported as
    due, for an operator. Idempotent; safe to run from several places (one runs at a time)."""
    async with pool.connection() as lock:
        cursor = await lock.execute("SELECT pg_try_advisory_lock(%s)", (ROTATION_LOCK_KEY,))
        if not (await cursor.fetchone() or (False,))[0]:
            return RotationReport(active=master.active_id, busy=True)
        try:
            return await _rotate(pool, master, policy, now)
        finally:
            await lock.execute("SELECT pg_advisory_unlock(%s)", (ROTATION_LOCK_KEY,))


async def _rotate(pool: AsyncConnectionPool, master: MasterKeys, policy: KeyPolicy, now: datetime) -> RotationReport:
    master.reload()
    await _record_ring(pool, master, now)
    report = RotationReport(active=master.active_id)
    activated = (await key_states(pool, master))[master.active_id].activated_at
    if activated is not None and now - activated >= policy.rotate_after:
        await _add_active_key(pool, master, report, now)
    try:
        while True:
            seen, rewrapped = await rewrap_batch(pool, master, REWRAP_BATCH)
            report.rewrapped += rewrapped
            if not seen:
                break
    except KeyUnavailableError as error:  # a data key that no configured master key opens
        report.error = str(error)
        report.keys = list((await key_states(pool, master)).values())
        return report
    for state in (await key_states(pool, master)).values():
        unused = state.configured and state.master_key_id != master.active_id and state.data_keys == 0
        if unused and state.activated_at is not None and state.retired_at is None:
            await _mark(pool, state.master_key_id, "retired_at", now, "keys.master_retired")
            report.retired.append(state.master_key_id)
    for state in (await key_states(pool, master)).values():
        if state.retired_at is not None and state.destroyed_at is None and not state.data_keys:
            await _destroy_if_due(pool, master, report, state, policy, now)
    report.keys = list((await key_states(pool, master)).values())
    return report


async def _add_active_key(pool: AsyncConnectionPool, master: MasterKeys, report: RotationReport, now: datetime) -> None:
    """A new master key, first in the ring: new data keys wrap with it, and this run re-wraps the rest."""
    previous = master.active_id
    new_id, new_key = new_master_key(now)
    if master.path is None or not _rewrite(
        report, master.path, [(new_id, new_key), *read_master_keys_file(master.path)]
    ):
        report.rotation_due = True
        return
    master.reload()
    await _record_ring(pool, master, now)
    async with pool.connection() as connection, connection.transaction():
        await _append(connection, "keys.master_rotated", new_id, {"previous": previous})
    report.active, report.rotated_from = new_id, previous


async def _destroy_if_due(
    pool: AsyncConnectionPool,
    master: MasterKeys,
    report: RotationReport,
    state: MasterKeyState,
    policy: KeyPolicy,
    now: datetime,
) -> None:
    """Remove a retired key from the ring once `destroy_after` has passed since it retired."""
    key_id = state.master_key_id
    assert state.retired_at is not None
    if key_id == master.active_id or now - state.retired_at < policy.destroy_after:
        return
    if not state.configured:  # an operator removed it (keys from the environment), or a run died after
        await _mark(pool, key_id, "destroyed_at", now, "keys.master_destroyed")
        report.destroyed.append(key_id)
        return
    kept = [] if master.path is None else [item for item in read_master_keys_file(master.path) if item[0] != key_id]
    if master.path is None or not _rewrite(report, master.path, kept):
        report.destruction_due.append(key_id)
        return
    master.reload()
    await _mark(pool, key_id, "destroyed_at", now, "keys.master_destroyed")
    report.destroyed.append(key_id)


def _rewrite(report: RotationReport, path: Path, keys: list[tuple[str, bytes]]) -> bool:
    """Rewrite the ring, or say why it cannot be (a secret store's read-only mount): then the step
    is reported as due, for whoever can write the store."""
    try:
        write_key_ring(path, keys)
    except OSError as error:
        report.ring_unwritable = f"{path}: {error.strerror or error}"
        return False
    return True


async def key_states(pool: AsyncConnectionPool, master: MasterKeys) -> dict[str, MasterKeyState]:
    """Every master key recorded or configured, with its life and how many data keys it wraps."""
    counts = await keys_by_master(pool)
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT master_key_id, activated_at, retired_at, destroyed_at FROM master_keys ORDER BY first_seen_at, 1"
        )
        rows = await cursor.fetchall()
    held = set(master.ids)
    states = {
        key_id: MasterKeyState(key_id, activated, retired, destroyed, counts.get(key_id, 0), key_id in held)
        for key_id, activated, retired, destroyed in rows
    }
    for key_id in [*master.ids, *counts]:
        states.setdefault(key_id, MasterKeyState(key_id, None, None, None, counts.get(key_id, 0), key_id in held))
    return states


async def _record_ring(pool: AsyncConnectionPool, master: MasterKeys, now: datetime) -> None:
    """Every key in the ring gets its row; the active one its activation (once), and it is no
    longer retired if it had been (an operator put an old key back first)."""
    async with pool.connection() as connection, connection.transaction():
        for key_id in master.ids:
            await connection.execute(
                "INSERT INTO master_keys (master_key_id, first_seen_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (key_id, now),
            )
        await connection.execute(
            "UPDATE master_keys SET activated_at = coalesce(activated_at, %s), retired_at = NULL"
            " WHERE master_key_id = %s",
            (now, master.active_id),
        )


async def _mark(pool: AsyncConnectionPool, key_id: str, column: str, when: datetime, action: str) -> None:
    """Record a step of the key's life, with its audit record, in one transaction."""
    statement = {
        "retired_at": "UPDATE master_keys SET retired_at = %s WHERE master_key_id = %s",
        "destroyed_at": "UPDATE master_keys SET destroyed_at = %s WHERE master_key_id = %s",
    }[column]
    async with pool.connection() as connection, connection.transaction():
        await connection.execute(statement, (when, key_id))
        await _append(connection, action, key_id, {})


async def _append(connection: AsyncConnection[Any], action: str, key_id: str, details: dict[str, Any]) -> None:
    await append_audit(
        connection,
        actor="system",
        actor_role="system",
        action=action,
        subject=None,
        resource=f"master-keys/{key_id}",
        purpose="master key rotation policy",
        details=details,
    )
