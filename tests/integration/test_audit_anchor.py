"""The audit log's anchor: signed checkpoints kept outside the table catch what the unkeyed chain
cannot, a tail removed and a chain recomputed over a different history, and a checkpoint forged
without the key. Each test has a database of its own, as each rewrites the log behind its trigger."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from badges.config import Settings
from badges.db.audit import canonical_record, chain_hash, record_audit, verify_chain
from badges.db.audit_checkpoints import (
    AnchorKeys,
    AuditChainBrokenError,
    Checkpoint,
    CheckpointError,
    CheckpointStore,
    verify_audit_log,
    write_checkpoint,
)
from badges.db.keys import KeyStore
from badges.db.migrate import upgrade
from badges.db.pool import open_pool
from badges.messages.schedules import (
    AUDIT_CHECKPOINT_EVERY,
    AUDIT_CHECKPOINT_SCHEDULE_ID,
    RELEASE_SCHEDULE_ID,
    RETENTION_SCHEDULE_ID,
)
from badges.temporal import ensure_schedules
from tests.integration.support import running_worker
from tests.support import eventually

KEY_A = ("anchor-a", secrets.token_bytes(32))
KEY_B = ("anchor-b", secrets.token_bytes(32))


def database_named(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")


@pytest.fixture(scope="module")
def template_database(database_url: str) -> Iterator[str]:
    """A migrated database that each test's own is copied from (copying is quicker than migrating)."""
    name = f"badges_anchor_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    upgrade(database_named(database_url, name).replace("postgresql://", "postgresql+psycopg://", 1))
    yield name
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def own_database(database_url: str, template_database: str) -> Iterator[str]:
    name = f"badges_anchor_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield database_named(database_url, name)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def log(own_database: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(own_database, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def store(tmp_path: Path) -> CheckpointStore:
    return CheckpointStore(tmp_path / "audit-checkpoints")


async def append(pool: AsyncConnectionPool, count: int) -> list[int]:
    """`count` records; their ids."""
    for n in range(count):
        await record_audit(
            pool,
            actor=f"staff-{n}",
            actor_role="compliance",
            action="read.rewards",
            subject=uuid.uuid4(),
            resource=f"/v1/admin/members/{n}",
            purpose="ticket 7",
            details={"n": n},
        )
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT id FROM audit_log ORDER BY id DESC LIMIT %s", (count,))
        return sorted(row[0] for row in await cursor.fetchall())


async def behind_the_trigger(url: str, *statements: tuple[str, tuple[object, ...]]) -> None:
    """What the table's owner can do: switch the append-only trigger off, change rows, switch it on."""
    async with await psycopg.AsyncConnection.connect(url) as connection:
        await connection.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        for statement, parameters in statements:
            await connection.execute(statement, parameters)
        await connection.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        await connection.commit()


async def recompute_chain(url: str) -> None:
    """Recompute every record's prev_hash and hash from the rows as they now stand: all it takes
    is the table and the published formula, no key."""
    async with await psycopg.AsyncConnection.connect(url) as connection:
        cursor = await connection.execute(
            "SELECT id, at, actor, actor_role, action, subject, resource, purpose, details FROM audit_log ORDER BY id"
        )
        rows = await cursor.fetchall()
        await connection.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        prev = bytes(32)
        for record_id, at, actor, role, action, subject, resource, purpose, details in rows:
            canonical = canonical_record(
                at=at,
                actor=actor,
                actor_role=role,
                action=action,
                subject=subject,
                resource=resource,
                purpose=purpose,
                details=details,
            )
            digest = chain_hash(prev, canonical)
            await connection.execute(
                "UPDATE audit_log SET prev_hash = %s, hash = %s WHERE id = %s", (prev, digest, record_id)
            )
            prev = digest
        await connection.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        await connection.commit()


def now() -> datetime:
    return datetime.now(UTC)


def encoded(*keys: tuple[str, bytes]) -> str:
    return ",".join(f"{key_id}:{base64.b64encode(key).decode()}" for key_id, key in keys)


def run_cli(
    url: str, store: CheckpointStore, *arguments: str, keys: str | None = None
) -> tuple[int, dict[str, object]]:
    anchor_keys = keys if keys is not None else encoded(KEY_A)
    completed = subprocess.run(
        [sys.executable, "-m", "badges.cli.audit", *arguments],
        env={
            **os.environ,
            "DATABASE_URL": url,
            "BADGES_AUDIT_ANCHOR_KEYS": anchor_keys,
            "BADGES_AUDIT_CHECKPOINT_DIR": str(store.directory),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    verdict = json.loads(completed.stdout) if completed.stdout.strip() else {"stderr": completed.stderr}
    return completed.returncode, verdict


async def test_an_untouched_log_verifies_through_every_checkpoint(
    log: AsyncConnectionPool, store: CheckpointStore, own_database: str
) -> None:
    keys = AnchorKeys([KEY_A])
    first = await write_checkpoint(log, store, keys, now())  # the empty log
    assert (first.seq, first.audit_id, first.records) == (1, 0, 0)
    ids = await append(log, 5)
    second = await write_checkpoint(log, store, keys, now())
    third = await write_checkpoint(log, store, keys, now())  # nothing new: still a checkpoint (freshness)
    await append(log, 2)

    assert (second.audit_id, second.records) == (ids[-1], 5)
    assert (third.audit_id, third.records, third.prev_mac) == (ids[-1], 5, second.mac)
    assert sorted(path.name for path in store.directory.iterdir()) == [
        ".incoming",  # where each is written before it is linked to its name: empty after
        "000000000001.json",
        "000000000002.json",
        "000000000003.json",
    ]
    assert not list((store.directory / ".incoming").iterdir())
    verdict = await verify_audit_log(log, store, keys, now=now(), max_age=timedelta(minutes=5))
    assert verdict.ok, verdict
    assert (verdict.records_checked, verdict.checkpoints_checked) == (7, 3)
    assert (verdict.anchored_through, verdict.unanchored_records) == (ids[-1], 2)

    status, printed = run_cli(own_database, store, "verify")
    assert status == 0, printed
    assert printed["ok"] is True and printed["checkpoints_checked"] == 3 and printed["anchored"] is True
    # The command line signs one too, with the same result as the worker's schedule.
    status, printed = run_cli(own_database, store, "checkpoint")
    assert (status, printed["checkpoint"], printed["records"]) == (0, 4, 7), printed


async def test_a_tail_removed_after_a_checkpoint_is_caught(
    log: AsyncConnectionPool, store: CheckpointStore, own_database: str
) -> None:
    keys = AnchorKeys([KEY_A])
    ids = await append(log, 6)
    checkpoint = await write_checkpoint(log, store, keys, now())
    await behind_the_trigger(own_database, ("DELETE FROM audit_log WHERE id > %s", (ids[2],)))

    assert (await verify_chain(log)).ok  # the unkeyed chain alone sees nothing wrong
    verdict = await verify_audit_log(log, store, keys, now=now())
    assert not verdict.ok
    assert (verdict.first_bad_checkpoint, verdict.first_bad_id) == (checkpoint.seq, ids[-1])
    assert "tail was removed" in verdict.reason, verdict.reason

    status, printed = run_cli(own_database, store, "verify")
    assert status == 1
    assert printed["ok"] is False and printed["first_bad_checkpoint"] == 1 and printed["first_bad_id"] == ids[-1]

    # Appending after the cut hides nothing: the record the checkpoint names is still missing.
    await append(log, 3)
    verdict = await verify_audit_log(log, store, keys, now=now())
    assert (verdict.ok, verdict.first_bad_id) == (False, ids[-1])
    assert "is missing" in verdict.reason, verdict.reason


async def test_a_chain_recomputed_over_an_altered_record_is_caught(
    log: AsyncConnectionPool, store: CheckpointStore, own_database: str
) -> None:
    keys = AnchorKeys([KEY_A])
    ids = await append(log, 4)
    first = await write_checkpoint(log, store, keys, now())
    more = await append(log, 4)
    second = await write_checkpoint(log, store, keys, now())
    await append(log, 2)
    # Rewrite who read a member's data, after the first checkpoint, and recompute every hash after it.
    await behind_the_trigger(own_database, ("UPDATE audit_log SET actor = 'nobody' WHERE id = %s", (more[1],)))
    await recompute_chain(own_database)

    assert (await verify_chain(log)).ok  # recomputed: the unkeyed chain is sound again
    verdict = await verify_audit_log(log, store, keys, now=now())
    assert not verdict.ok
    assert (verdict.first_bad_checkpoint, verdict.first_bad_id) == (second.seq, more[-1])
    assert f"after record {ids[-1]} (checkpoint {first.seq})" in verdict.reason, verdict.reason
    assert "recomputed" in verdict.reason

    status, printed = run_cli(own_database, store, "verify")
    assert (status, printed["first_bad_checkpoint"], printed["first_bad_id"]) == (1, 2, more[-1])
    # Nor does the worker sign the rewritten history.
    with pytest.raises(AuditChainBrokenError):
        await write_checkpoint(log, store, keys, now())


async def test_a_record_deleted_in_the_middle_is_caught(
    log: AsyncConnectionPool, store: CheckpointStore, own_database: str
) -> None:
    keys = AnchorKeys([KEY_A])
    ids = await append(log, 6)
    await write_checkpoint(log, store, keys, now())
    await behind_the_trigger(own_database, ("DELETE FROM audit_log WHERE id = %s", (ids[2],)))

    verdict = await verify_audit_log(log, store, keys, now=now())  # left as is: the chain breaks there
    assert (verdict.ok, verdict.first_bad_id) == (False, ids[3])

    await recompute_chain(own_database)  # and hidden: the checkpoint's count and hash do not match
    verdict = await verify_audit_log(log, store, keys, now=now())
    assert (verdict.ok, verdict.first_bad_checkpoint, verdict.first_bad_id) == (False, 1, ids[-1])
    assert "counted 6 records" in verdict.reason and "holds 5" in verdict.reason, verdict.reason


async def test_checkpoints_forged_altered_or_removed_are_caught(
    log: AsyncConnectionPool, store: CheckpointStore, own_database: str
) -> None:
    keys = AnchorKeys([KEY_A])
    for _ in range(3):
        await append(log, 2)
        await write_checkpoint(log, store, keys, now())
    assert (await verify_audit_log(log, store, keys, now=now())).ok
    second = store.directory / "000000000002.json"
    original = second.read_bytes()

    def rewrite(content: bytes) -> None:
        if second.exists():
            second.chmod(0o640)
        second.write_bytes(content)

    # Altered: checkpoint 2 made to vouch for less than it did.
    fields = json.loads(original)
    rewrite(json.dumps({**fields, "audit_id": fields["audit_id"] - 1, "records": 3}).encode())
    verdict = await verify_audit_log(log, store, keys, now=now())
    assert (verdict.ok, verdict.first_bad_checkpoint) == (False, 2)
    assert "MAC does not verify" in verdict.reason

    # Forged: signed, but with a key that is not the anchoring key (under its id).
    checkpoint = Checkpoint.from_json(original, 2)
    forged = Checkpoint.sign(
        AnchorKeys([(KEY_A[0], secrets.token_bytes(32))]),
        seq=2,
        audit_id=checkpoint.audit_id,
        chain_hash=checkpoint.chain_hash,
        records=checkpoint.records,
        at=checkpoint.at,
        prev_mac=checkpoint.prev_mac,
    )
    rewrite(forged.to_json())
    verdict = await verify_audit_log(log, store, keys, now=now())
    assert (verdict.ok, verdict.first_bad_checkpoint) == (False, 2)
    status, printed = run_cli(own_database, store, "verify")
    assert status == 1 and printed["first_bad_checkpoint"] == 2 and "forged" in str(printed["reason"])
    # Nor does a checkpoint signed under another key id pass.
    rewrite(replace(forged, key_id="made-up").to_json())
    verdict = await verify_audit_log(log, store, keys, now=now())
    assert (verdict.ok, verdict.first_bad_checkpoint) == (False, 2) and "does not list" in verdict.reason

    # Removed from the middle.
    second.unlink()
    verdict = await verify_audit_log(log, store, keys, now=now())
    assert (verdict.ok, verdict.first_bad_checkpoint) == (False, 2) and "missing" in verdict.reason
    # Restored, as it was: sound again.
    rewrite(original)
    assert (await verify_audit_log(log, store, keys, now=now())).ok


async def test_a_stale_anchor_fails_when_freshness_is_asked(log: AsyncConnectionPool, store: CheckpointStore) -> None:
    keys = AnchorKeys([KEY_A])
    assert not (await verify_audit_log(log, store, keys, now=now(), max_age=timedelta(hours=1))).ok
    await append(log, 1)
    await write_checkpoint(log, store, keys, now() - timedelta(hours=2))
    assert (await verify_audit_log(log, store, keys, now=now())).ok
    verdict = await verify_audit_log(log, store, keys, now=now(), max_age=timedelta(hours=1))
    assert (verdict.ok, verdict.first_bad_checkpoint) == (False, 1) and "older than" in verdict.reason


async def test_the_anchoring_key_rotates(log: AsyncConnectionPool, store: CheckpointStore, own_database: str) -> None:
    old = AnchorKeys([KEY_A])
    await append(log, 2)
    await write_checkpoint(log, store, old, now())
    rotated = AnchorKeys([KEY_B, KEY_A])  # the new key first: it signs, the old one still verifies
    await append(log, 2)
    newer = await write_checkpoint(log, store, rotated, now())
    assert newer.key_id == KEY_B[0]
    assert (await verify_audit_log(log, store, rotated, now=now())).ok
    assert not (await verify_audit_log(log, store, old, now=now())).ok  # a verifier without the new key
    assert run_cli(own_database, store, "verify", keys=encoded(KEY_B, KEY_A))[0] == 0

    # During the rolling restart a worker not yet restarted (old key first, the new one already
    # listed after it) still signs with the old key: fine. One that does not list the new key stops.
    await append(log, 1)
    with pytest.raises(CheckpointError):
        await write_checkpoint(log, store, old, now())
    assert (await write_checkpoint(log, store, AnchorKeys([KEY_A, KEY_B]), now())).key_id == KEY_A[0]
    assert (await verify_audit_log(log, store, rotated, now=now())).ok
    # The old key stays listed (verifying only) while the checkpoints it signed are kept.
    verdict = await verify_audit_log(log, store, AnchorKeys([KEY_B]), now=now())
    assert (verdict.ok, verdict.first_bad_checkpoint) == (False, 1) and "does not list" in verdict.reason


def test_without_the_key_verify_checks_the_chain_only_when_asked(own_database: str, store: CheckpointStore) -> None:
    status, printed = run_cli(own_database, store, "verify", keys="")
    assert status == 2 and "BADGES_AUDIT_ANCHOR_KEYS" in str(printed["stderr"])
    status, printed = run_cli(own_database, store, "verify", "--chain-only", keys="")
    assert (status, printed["ok"], printed["anchored"]) == (0, True, False)


async def test_the_worker_signs_checkpoints_on_its_schedule(
    dev_server: WorkflowEnvironment,
    settings: Settings,
    log: AsyncConnectionPool,
    engine: AsyncEngine,
    keys: KeyStore,
    store: CheckpointStore,
    own_database: str,
) -> None:
    anchored = settings.model_copy(
        update={
            "temporal_address": dev_server.client.service_client.config.target_host,
            "audit_anchor_keys": encoded(KEY_A),
            "audit_checkpoint_dir": str(store.directory),
        }
    )
    await append(log, 3)
    # The session's other schedules, if this call is the one that creates them, would point at this
    # test's task queue: they are removed after it, as the audit schedule is.
    others = []
    for schedule_id in (RELEASE_SCHEDULE_ID, RETENTION_SCHEDULE_ID):
        try:
            await dev_server.client.get_schedule_handle(schedule_id).describe()
        except RPCError:
            others.append(dev_server.client.get_schedule_handle(schedule_id))
    async with running_worker(dev_server, anchored, log, engine, keys) as task_queue:
        await ensure_schedules(dev_server.client, anchored.model_copy(update={"task_queue": task_queue}))
        schedule = dev_server.client.get_schedule_handle(AUDIT_CHECKPOINT_SCHEDULE_ID)
        try:
            described = await schedule.describe()
            assert described.schedule.action.workflow == "AuditCheckpointWorkflow"  # type: ignore[attr-defined]
            assert described.schedule.spec.intervals[0].every == AUDIT_CHECKPOINT_EVERY

            async def checkpoints(count: int) -> bool:
                return len(store.files()) == count

            await schedule.trigger()
            await eventually(lambda: checkpoints(1))
            await append(log, 2)
            await schedule.trigger()
            await eventually(lambda: checkpoints(2))
        finally:
            for created in (schedule, *others):
                await created.delete()
        verdict = await verify_audit_log(log, store, AnchorKeys([KEY_A]), now=now(), max_age=timedelta(minutes=5))
        assert verdict.ok, verdict
        assert (verdict.checkpoints_checked, verdict.records_checked, verdict.unanchored_records) == (2, 5, 0)

        # A history rewritten behind the last checkpoint is not signed: the run fails for good.
        await behind_the_trigger(own_database, ("DELETE FROM audit_log WHERE id = (SELECT min(id) FROM audit_log)", ()))
        await recompute_chain(own_database)
        with pytest.raises(WorkflowFailureError) as failure:
            await dev_server.client.execute_workflow(
                "AuditCheckpointWorkflow", id=f"audit-checkpoint-{uuid.uuid4()}", task_queue=task_queue
            )
        assert isinstance(failure.value.cause, ActivityError)
        cause = failure.value.cause.cause
        assert isinstance(cause, ApplicationError) and cause.type == "AuditChainBroken", cause
        assert len(store.files()) == 2
