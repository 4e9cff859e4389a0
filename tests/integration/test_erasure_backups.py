"""Erasure and backups: a copy of the database taken BEFORE a member's erasure, restored later,
must not open the member's sealed data once the master key of its day has been destroyed.

A backup holds the member's data key wrapped by the master key. Erasure destroys the live copy of
the data key, not the backup's; so master keys rotate (`BADGES_MASTER_KEY_ROTATION_DAYS`) and a
retired one is destroyed `BADGES_BACKUP_RETENTION_DAYS` after it retired. These tests live through
that on databases of their own (their master keys are theirs to rotate and destroy), with the
clock handed to `rotate_due`, or moved back in the `master_keys` table for the command line.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment

from badges.config import Settings, parse_master_keys
from badges.db import master_keys
from badges.db.audit import verify_chain
from badges.db.consents import upsert_consent
from badges.db.engine import make_engine
from badges.db.erasure import block_member, delete_member_rows, destroy_keys
from badges.db.keys import NONCE_BYTES, KeyStore, KeyUnavailableError, MasterKeys
from badges.db.master_keys import KeyPolicy, format_master_key, new_master_key, rotate_due, write_key_ring
from badges.db.members import load_demographics, save_demographics
from badges.db.migrate import upgrade
from badges.db.pool import open_pool
from badges.messages.master_keys import MasterKeyRotation
from badges.messages.schedules import MASTER_KEYS_SCHEDULE_ID
from badges.temporal import ensure_schedules
from badges.temporal.codec import EncryptionCodec
from tests.conftest import create_member

POLICY = KeyPolicy(rotate_after=timedelta(days=90), destroy_after=timedelta(days=35))
DEMOGRAPHICS = {"ageRange": "25-34", "dependants": 2, "postcode": "SW1A", "salaryBracket": "30-45k"}
HISTORY = b'{"eventData": {"calculator": "mortgage"}}'


def sibling_url(url: str, name: str) -> str:
    """The URL of database `name` on the same server as `url`."""
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")


def sqlalchemy_url(libpq_url: str) -> str:
    return libpq_url.replace("postgresql://", "postgresql+psycopg://", 1)


async def new_database(server_url: str, prefix: str) -> str:
    """A fresh database with the schema, on the test server."""
    url = sibling_url(server_url, f"{prefix}_{uuid.uuid4().hex[:12]}")
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.partition("?")[0].rsplit("/")[-1])))
    await asyncio.to_thread(upgrade, sqlalchemy_url(url))
    return url


def drop_database(server_url: str, url: str) -> None:
    name = url.partition("?")[0].rsplit("/")[-1]
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def take_backup(source_url: str) -> str:
    """What a backup holds, restored into a database of its own: every row of every table, as
    `pg_dump --data-only` and `pg_restore --disable-triggers` would carry them."""
    target_url = await new_database(source_url, "badges_backup")
    async with (
        await psycopg.AsyncConnection.connect(source_url) as source,
        await psycopg.AsyncConnection.connect(target_url) as target,
    ):
        cursor = await source.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        tables = [name for (name,) in await cursor.fetchall()]
        await target.execute("SET session_replication_role = replica")  # rows in any order, as pg_restore
        for table in tables:
            out = sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(sql.Identifier(table))
            into = sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(sql.Identifier(table))
            async with source.cursor().copy(out) as reading, target.cursor().copy(into) as writing:
                async for block in reading:
                    await writing.write(block)
        await target.commit()
    return target_url


@dataclass
class Deployment:
    """One deployment: its database, and its master key ring in a file (a secret store's mount)."""

    url: str
    pool: AsyncConnectionPool
    engine: AsyncEngine
    ring: Path
    keys: KeyStore


@pytest.fixture
async def deployment(database_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    url = await new_database(database_url, "badges_deployment")
    ring = tmp_path / "master-keys"
    write_key_ring(ring, [new_master_key(datetime.now(UTC))])
    pool = await open_pool(url)
    engine = make_engine(sqlalchemy_url(url))
    try:
        yield Deployment(url, pool, engine, ring, KeyStore(engine, MasterKeys.from_file(ring)))
    finally:
        await pool.close()
        await engine.dispose()
        drop_database(database_url, url)


async def member_with_sealed_data(deployment: Deployment, now: datetime) -> tuple[uuid.UUID, list[Payload]]:
    """A member with demographics (a sealed column) and a payload of their workflow history."""
    member = await create_member(deployment.engine, deployment.keys)
    async with deployment.pool.connection() as connection, connection.transaction():
        await upsert_consent(
            connection,
            member,
            "demographics",
            purpose="peer groups",
            granted_at=now,
            expires_at=now + timedelta(days=300),
            revoked_at=None,
        )
    assert await save_demographics(deployment.engine, deployment.keys, member, DEMOGRAPHICS)
    history = await EncryptionCodec(deployment.keys, str(member)).encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=HISTORY)]
    )
    return member, history


async def erase(deployment: Deployment, member: uuid.UUID) -> None:
    """The erasure's database steps (`ErasureWorkflow` runs them as activities; test_erasure.py
    runs the workflow itself): tombstone, every row, the data key."""
    async with deployment.pool.connection() as connection, connection.transaction():
        await block_member(connection, member)
        await delete_member_rows(connection, member)
        assert await destroy_keys(connection, str(member)) == 1
    deployment.keys.forget(str(member))


async def restore_and_open(backup_url: str, ring: Path, member: uuid.UUID, history: list[Payload]) -> tuple[Any, bytes]:
    """Restore the backup and open the member's data with the master keys the system holds now,
    as a process started on the restored copy would."""
    engine = make_engine(sqlalchemy_url(backup_url))
    try:
        keys = KeyStore(engine, MasterKeys.from_file(ring))
        demographics = await load_demographics(engine, keys, member)
        [payload] = await EncryptionCodec(keys).decode(history)
        return demographics, payload.data
    finally:
        await engine.dispose()


async def test_a_backup_taken_before_an_erasure_stops_opening_once_its_master_key_is_destroyed(
    deployment: Deployment, database_url: str
) -> None:
    now = datetime.now(UTC)
    first_master = deployment.keys.master.active_id
    member, history = await member_with_sealed_data(deployment, now)
    survivor, survivor_history = await member_with_sealed_data(deployment, now)
    first = await rotate_due(deployment.pool, deployment.keys.master, POLICY, now)  # the schedule's first run
    assert first.rotated_from is None and first.retired == [] and first.destroyed == []

    backup_url = await take_backup(deployment.url)
    try:
        await erase(deployment, member)
        assert await load_demographics(deployment.engine, deployment.keys, member) is None

        # The threat: the backup, restored with the master key the system still holds, opens the
        # erased member's sealed data and their workflow history.
        assert await restore_and_open(backup_url, deployment.ring, member, history) == (DEMOGRAPHICS, HISTORY)

        # A rotation period on: a new master key, every live data key re-wrapped under it, the old
        # one retired but kept: a backup within the retention must still restore.
        rotated = await rotate_due(deployment.pool, deployment.keys.master, POLICY, now + POLICY.rotate_after)
        assert rotated.rotated_from == first_master and rotated.active != first_master
        assert rotated.retired == [first_master] and rotated.destroyed == [] and rotated.rewrapped == 1
        assert await restore_and_open(backup_url, deployment.ring, member, history) == (DEMOGRAPHICS, HISTORY)
        day_before = now + POLICY.rotate_after + POLICY.destroy_after - timedelta(days=1)
        assert (await rotate_due(deployment.pool, deployment.keys.master, POLICY, day_before)).destroyed == []

        # The retention over: the retired key is destroyed, and the backup no longer opens.
        done = now + POLICY.rotate_after + POLICY.destroy_after
        destroyed = await rotate_due(deployment.pool, deployment.keys.master, POLICY, done)
        assert destroyed.destroyed == [first_master] and destroyed.rotated_from is None
        ring = parse_master_keys(deployment.ring.read_text())
        assert [key_id for key_id, _ in ring] == [rotated.active]
        with pytest.raises(KeyUnavailableError, match=first_master):
            await restore_and_open(backup_url, deployment.ring, member, history)
        # Nor with any key the system has: each master key it holds tried on the backup's copy
        # of the member's data key.
        async with await psycopg.AsyncConnection.connect(backup_url) as backup:
            cursor = await backup.execute(
                "SELECT key_id, master_key_id, wrapped_key FROM data_keys WHERE owner = %s", (str(member),)
            )
            [(data_key_id, wrapped_by, wrapped)] = await cursor.fetchall()
        assert wrapped_by == first_master
        for _, master_key in ring:
            with pytest.raises(InvalidTag):
                AESGCM(master_key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], data_key_id.encode())

        # Everyone else is unharmed: a process started now opens the survivor's data.
        fresh = KeyStore(deployment.engine, MasterKeys.from_file(deployment.ring))
        assert await load_demographics(deployment.engine, fresh, survivor) == DEMOGRAPHICS
        assert [p.data for p in await EncryptionCodec(fresh).decode(survivor_history)] == [HISTORY]
        # And the master keys' life is in the audit log, which still verifies.
        async with deployment.pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT action, resource FROM audit_log WHERE resource LIKE 'master-keys/%%' ORDER BY id"
            )
            assert await cursor.fetchall() == [
                ("keys.master_rotated", f"master-keys/{rotated.active}"),
                ("keys.master_retired", f"master-keys/{first_master}"),
                ("keys.master_destroyed", f"master-keys/{first_master}"),
            ]
        assert (await verify_chain(deployment.pool)).ok
    finally:
        drop_database(database_url, backup_url)


async def test_a_ring_this_process_cannot_write_is_reported_as_due_not_half_rotated(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    await create_member(deployment.engine, deployment.keys)
    first = deployment.keys.master.active_id
    await rotate_due(deployment.pool, deployment.keys.master, POLICY, now)

    def read_only(path: Path, keys: list[tuple[str, bytes]]) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(master_keys, "write_key_ring", read_only)  # a secret store's read-only mount
    report = await rotate_due(deployment.pool, deployment.keys.master, POLICY, now + POLICY.rotate_after)
    assert report.rotation_due and report.rotated_from is None and report.error is None
    assert report.ring_unwritable is not None and "Read-only" in report.ring_unwritable
    assert deployment.keys.master.ids == [first] and report.retired == []


def keys_cli(url: str, master_keys: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "badges.cli.keys", "rotate-due"],
        env={**os.environ, "DATABASE_URL": url, "BADGES_MASTER_KEYS": master_keys},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)


async def move_back(pool: AsyncConnectionPool, column: str, key_id: str, days: int) -> None:
    assert column in ("activated_at", "retired_at")
    async with pool.connection() as connection:
        await connection.execute(
            sql.SQL("UPDATE master_keys SET {} = {} - make_interval(days => %s) WHERE master_key_id = %s").format(
                sql.Identifier(column), sql.Identifier(column)
            ),
            (days, key_id),
        )


async def test_keys_from_the_environment_are_rotated_by_hand_when_the_command_says_so(
    deployment: Deployment,
) -> None:
    """With `BADGES_MASTER_KEYS` nothing can add or remove a key but an operator: `rotate-due`
    re-wraps and retires, and says (exit 3) when a new key or a destruction is due."""
    old_id, old_key = new_master_key(datetime.now(UTC))
    new_id, new_key = new_master_key(datetime.now(UTC))
    old, new = format_master_key(old_id, old_key), format_master_key(new_id, new_key)
    member = await create_member(deployment.engine, KeyStore(deployment.engine, MasterKeys([(old_id, old_key)])))

    code, report = await asyncio.to_thread(keys_cli, deployment.url, old)
    assert code == 0 and report["active"] == old_id and not report["rotation_due"]
    await move_back(deployment.pool, "activated_at", old_id, 91)
    code, report = await asyncio.to_thread(keys_cli, deployment.url, old)
    assert code == 3 and report["rotation_due"] and report["rotated_from"] is None

    # The operator adds a new key first: the command re-wraps under it and retires the old one.
    code, report = await asyncio.to_thread(keys_cli, deployment.url, f"{new},{old}")
    assert code == 0 and report["rewrapped"] == 1 and report["retired"] == [old_id], report
    await move_back(deployment.pool, "retired_at", old_id, 35)
    code, report = await asyncio.to_thread(keys_cli, deployment.url, f"{new},{old}")
    assert code == 3 and report["destruction_due"] == [old_id]
    code, report = await asyncio.to_thread(keys_cli, deployment.url, new)  # removed everywhere
    assert code == 0 and report["destruction_due"] == [] and report["destroyed"] == [old_id]
    only_new = KeyStore(deployment.engine, MasterKeys([(new_id, new_key)]))
    assert (await only_new.live_key(str(member))).owner == str(member)


@pytest.mark.usefixtures("worker")
async def test_the_worker_runs_the_rotation_on_a_schedule(
    dev_server: WorkflowEnvironment, system_settings: Settings, pool: AsyncConnectionPool
) -> None:
    await ensure_schedules(dev_server.client, system_settings)
    schedule = await dev_server.client.get_schedule_handle(MASTER_KEYS_SCHEDULE_ID).describe()
    assert schedule.schedule.spec.intervals[0].every == timedelta(days=1)

    async def run() -> MasterKeyRotation:
        return await dev_server.client.execute_workflow(
            "MasterKeyRotationWorkflow",
            id=f"keys/rotate-master-test-{uuid.uuid4()}",
            task_queue=system_settings.task_queue,
            result_type=MasterKeyRotation,
        )

    active = system_settings.parsed_master_keys[0][0]
    outcome = await run()
    assert outcome.active == active and not outcome.rotation_due and outcome.error is None
    await move_back(pool, "activated_at", active, 91)
    try:
        # The session's keys come from the environment: due, and said so, but not done.
        outcome = await run()
        assert outcome.rotation_due and outcome.rotated_from is None
    finally:
        await move_back(pool, "activated_at", active, -91)
