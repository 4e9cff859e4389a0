"""The audit trail: staff access and member reads are recorded, compliance reads them with filters,
and the hash chain catches a record changed behind the append-only trigger."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from badges.api.deps import MEMBER_READ_AUDIT_WINDOW
from badges.api.throttle import Throttle
from badges.config import Settings
from badges.db.audit import record_audit, verify_chain
from badges.db.audit_reads import MemberReadAudit
from tests.support import dev_token


async def last_audit_id(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT coalesce(max(id), 0) FROM audit_log")
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


async def test_staff_access_and_member_reads_are_recorded(client: httpx.AsyncClient, pool: AsyncConnectionPool) -> None:
    start = await last_audit_id(pool)
    operator_sub = f"ops-{uuid.uuid4()}"
    operator = await dev_token(client, operator_sub, ["operator"])
    member_sub = f"m-{uuid.uuid4()}"
    member = await dev_token(client, member_sub)
    named = uuid.uuid4()

    response = await client.get("/v1/admin/metrics", headers={**operator, "X-Audit-Purpose": "ticket 42"})
    assert response.status_code == 200
    response = await client.get(f"/v1/admin/review-queue?user={named}", headers=operator)
    assert response.status_code in (200, 422)
    assert (await client.get("/v1/me/rewards", headers=member)).status_code == 200

    compliance_sub = f"cmp-{uuid.uuid4()}"
    compliance = await dev_token(client, compliance_sub, ["compliance"])
    response = await client.get("/v1/admin/audit", params={"afterId": start}, headers=compliance)
    assert response.status_code == 200
    records = response.json()["records"]
    by_action = [(r["actor"], r["actorRole"], r["action"], r["purpose"]) for r in records]
    assert (operator_sub, "operator", "admin.GET", "ticket 42") in by_action
    queue = next(r for r in records if r["resource"].startswith("/v1/admin/review-queue"))
    assert queue["subject"] == str(named)
    assert queue["resource"] == f"/v1/admin/review-queue?user={named}"
    rewards = [r for r in records if r["action"] == "read.rewards"]
    assert len(rewards) == 1
    assert rewards[0]["actor"] == "member" and rewards[0]["subject"] is not None
    assert len(bytes.fromhex(rewards[0]["hash"])) == 32
    assert len(bytes.fromhex(rewards[0]["prevHash"])) == 32

    # Reading the log is itself audited.
    response = await client.get(
        "/v1/admin/audit", params={"afterId": start, "actor": compliance_sub}, headers=compliance
    )
    reads = response.json()["records"]
    assert reads and all(r["resource"].startswith("/v1/admin/audit") for r in reads)


async def test_only_a_member_id_parameter_makes_a_staff_accesss_subject(
    client: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    """A review item's id in the path, or a staff subject that looks like a UUID in the query,
    names no member: the audit record has no subject. A member id parameter does."""
    start = await last_audit_id(pool)
    admin_sub = f"adm-{uuid.uuid4()}"
    admin = await dev_token(client, admin_sub, ["admin"])
    review_id, integration_id, actor, member = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert (await client.get(f"/v1/admin/review-queue/{review_id}", headers=admin)).status_code == 404
    deleted = await client.delete(f"/v1/admin/integrations/{integration_id}", headers=admin)
    assert deleted.status_code in (204, 404)
    assert (await client.get("/v1/admin/audit", params={"actor": str(actor)}, headers=admin)).status_code == 200
    assert (await client.get("/v1/admin/dead-letters", params={"user": str(member)}, headers=admin)).status_code == 200

    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT resource, subject FROM audit_log WHERE id > %s AND actor = %s ORDER BY id", (start, admin_sub)
        )
        subjects = {resource.split("?")[0]: subject for resource, subject in await cursor.fetchall()}
    assert subjects == {
        f"/v1/admin/review-queue/{review_id}": None,
        f"/v1/admin/integrations/{integration_id}": None,
        "/v1/admin/audit": None,
        "/v1/admin/dead-letters": member,
    }


async def test_filters_and_paging(client: httpx.AsyncClient, pool: AsyncConnectionPool) -> None:
    subject = uuid.uuid4()
    actor = f"filter-{uuid.uuid4()}"
    for action in ("test.one", "test.two", "test.one"):
        await record_audit(
            pool, actor=actor, actor_role="system", action=action, subject=subject, resource="r", purpose="p"
        )
    compliance = await dev_token(client, "cmp@example.com", ["compliance"])

    async def page(**params: object) -> dict[str, Any]:
        response = await client.get("/v1/admin/audit", params=params, headers=compliance)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def read(**params: object) -> list[dict[str, object]]:
        return (await page(**params))["records"]  # type: ignore[no-any-return]

    assert [r["action"] for r in await read(actor=actor)] == ["test.one", "test.two", "test.one"]
    assert len(await read(actor=actor, action="test.one")) == 2
    # The read names the subject in its query, so it is itself recorded against that subject.
    by_subject = await read(subject=str(subject))
    assert [r["actor"] for r in by_subject] == [actor, actor, actor, "cmp@example.com"]
    assert await read(actor=actor, subject=str(uuid.uuid4())) == []
    first = await page(actor=actor, limit=1)
    assert first["nextAfterId"] == first["records"][0]["id"]
    second = await read(actor=actor, limit=1, afterId=first["nextAfterId"])
    assert first["records"][0]["id"] < second[0]["id"]
    # The parameter's name before the API settled on camelCase is still read.
    assert await read(actor=actor, limit=1, after_id=first["nextAfterId"]) == second
    assert (await page(actor=actor))["nextAfterId"] is None
    assert await read(actor=actor, since="2999-01-01T00:00:00Z") == []
    assert len(await read(actor=actor, until="2999-01-01T00:00:00Z")) == 3
    response = await client.get("/v1/admin/audit", params={"limit": 501}, headers=compliance)
    assert response.status_code == 422


async def test_only_compliance_and_admin_read_the_log(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/admin/audit")).status_code == 401
    for scopes, status in ((["user"], 403), (["operator"], 403), (["compliance"], 200), (["admin"], 200)):
        headers = await dev_token(client, f"s-{uuid.uuid4()}", scopes)
        assert (await client.get("/v1/admin/audit", headers=headers)).status_code == status, scopes


async def test_concurrent_appends_form_one_chain(pool: AsyncConnectionPool) -> None:
    before = await last_audit_id(pool)
    await asyncio.gather(
        *(
            record_audit(
                pool,
                actor=f"concurrent-{n}",
                actor_role="system",
                action="test.concurrent",
                subject=None,
                resource="r",
                purpose="p",
                details={"n": n, "nested": {"b": 1, "a": [1.5, "x"]}},
            )
            for n in range(50)
        )
    )
    assert await last_audit_id(pool) - before >= 50
    result = await verify_chain(pool)
    assert result.first_bad_id is None, result
    assert result.records_checked >= 50


def run_verify_cli(database_url: str) -> subprocess.CompletedProcess[str]:
    """The unkeyed chain alone (the session's log has no checkpoints; `test_audit_anchor.py` has them)."""
    return subprocess.run(
        [sys.executable, "-m", "badges.cli.audit", "verify", "--chain-only"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_append_only_trigger_refuses_changes(settings: Settings) -> None:
    async with await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True) as connection:
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(psycopg.errors.RaiseException):
                await connection.execute(statement)


async def test_tampering_is_caught(settings: Settings, pool: AsyncConnectionPool) -> None:
    await record_audit(
        pool, actor="honest", actor_role="system", action="test.tamper", subject=None, resource="r", purpose="p"
    )
    target = await last_audit_id(pool)
    await record_audit(
        pool, actor="after", actor_role="system", action="test.tamper", subject=None, resource="r", purpose="p"
    )
    healthy = run_verify_cli(settings.libpq_url)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert json.loads(healthy.stdout)["ok"] is True

    async def set_actor(actor: str) -> None:
        async with await psycopg.AsyncConnection.connect(settings.libpq_url) as connection:
            await connection.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
            await connection.execute("UPDATE audit_log SET actor = %s WHERE id = %s", (actor, target))
            await connection.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
            await connection.commit()

    await set_actor("mallory")
    try:
        result = await verify_chain(pool)
        assert result.first_bad_id == target
        broken = run_verify_cli(settings.libpq_url)
        assert broken.returncode == 1
        verdict = json.loads(broken.stdout)
        assert verdict["ok"] is False and verdict["first_bad_id"] == target
    finally:
        await set_actor("honest")  # the rest of the session's tests expect a sound chain
    assert (await verify_chain(pool)).first_bad_id is None


async def test_members_first_reads_arriving_together_share_transactions_and_keep_one_chain(
    pool: AsyncConnectionPool,
) -> None:
    """`MemberReadAudit`: first reads that arrive together are appended in fewer transactions than
    reads, each once, the chain intact; a read in a window already recorded is covered; an item
    the database refuses fails its own caller, not the others in its group."""
    audit = MemberReadAudit(pool)
    members = [uuid.uuid4() for _ in range(40)]

    def read(member: uuid.UUID, **overrides: Any) -> Any:
        window = Throttle.take("member-read-audit", MEMBER_READ_AUDIT_WINDOW, f"{member}:read.t:/t", time.time())
        record = {"actor": "member", "actor_role": "user", "action": "read.t", "subject": member}
        return audit.record(window, **{**record, "resource": "/t", "purpose": "test", **overrides})

    assert await asyncio.gather(*(read(member) for member in members[:30])) == [True] * 30
    stats = audit.stats()
    assert stats.items == 30 and stats.transactions < 30
    refused = uuid.uuid4()
    outcomes = await asyncio.gather(
        *(read(member) for member in members[30:]), read(refused, details={"bad": float("nan")}), return_exceptions=True
    )
    assert outcomes[:-1] == [True] * 10
    assert isinstance(outcomes[-1], Exception)  # NaN is no JSON: this one alone fails
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT subject FROM audit_log WHERE subject = ANY(%s)", ([*members, refused],))
        assert sorted(row[0] for row in await cursor.fetchall()) == sorted(members)
    assert await read(members[0]) is False  # covered by its window's record
    assert (await verify_chain(pool)).first_bad_id is None
