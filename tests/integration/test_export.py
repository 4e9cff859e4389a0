"""`GET /v1/me/export`: every table that holds the member's rows is in the export, row for row;
a slow export answers 202 with progress and a Location; nobody reads another member's export;
the retention Schedule deletes exports after a day."""

from __future__ import annotations

import uuid

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment

from badges.api.routes import export as export_route
from badges.config import Settings
from badges.db.erasure import member_tables
from badges.db.exports import NOT_EXPORTED, SEALED
from badges.domain.categories import merchant_label
from badges.messages.schedules import RETENTION_SCHEDULE_ID
from badges.temporal import ensure_schedules
from tests.integration.test_erasure import member_with_data, rows_held
from tests.integration.test_open_banking import consenting_member, link, wait_status
from tests.sandbox.conftest import Sandbox
from tests.support import dev_token, eventually

pytestmark = pytest.mark.usefixtures("worker")


async def test_the_export_holds_every_row_of_the_member(client: httpx.AsyncClient, pool: AsyncConnectionPool) -> None:
    headers, user_id = await member_with_data(client, f"{uuid.uuid4()}@example.com")
    assert (await client.get("/v1/me/rewards", headers=headers)).status_code == 200  # an audited read
    goal = {"kind": "limit", "name": "Fewer takeaways", "category": "fast_food", "limitMinor": 5_000}
    assert (await client.post("/v1/me/goals", json=goal, headers=headers)).status_code == 201
    claimed = await client.get("/v1/me/badges/calculator-explorer/credentials/1", headers=headers)
    assert claimed.status_code == 200, claimed.text
    held = await rows_held(pool, user_id)

    response = await client.get("/v1/me/export", headers=headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["userId"] == str(user_id)
    sections = document["sections"]
    async with pool.connection() as connection:
        tables = {table for table, _ in await member_tables(connection)}
    assert set(sections) == {"profile", "credentials", "accesses"} | tables - {"member_exports"}
    for table, count in held.items():
        if table not in ("members", "member_exports"):
            assert sections[table]["rows"] == count, table
            assert len(sections[table]["items"]) == count, table
    [profile] = sections["profile"]["items"]
    assert profile["id"] == str(user_id) and profile["timezone"] == "Europe/London"
    assert "subject_digest" not in profile
    assert {item["badge_id"] for item in sections["awards"]["items"]} >= {"calculator-explorer"}
    assert {"read.rewards"} <= {item["action"] for item in sections["accesses"]["items"]}
    [credential] = sections["credentials"]["items"]  # no foreign key: named by the export itself
    assert "urn:uuid:" + credential["credential_id"] == claimed.json()["credentialId"]
    [mine] = sections["member_goals"]["items"]  # opened: what the member set
    assert mine["kind"] == "limit" and mine["sealed"] == {key: goal[key] for key in ("name", "category", "limitMinor")}

    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'export.download' AND subject = %s", (user_id,)
        )
        assert (await cursor.fetchone()) == (1,)


async def test_the_export_holds_each_transaction_category_and_the_members_corrections(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool
) -> None:
    headers, user_id = await consenting_member(client)
    assert (await link(client, headers, sandbox_bank, "user_fastfood")).status_code == 201
    await wait_status(client, headers, "active")
    listed = (await client.get("/v1/me/transactions?limit=500", headers=headers)).json()["transactions"]
    [burger, *_] = [t for t in listed if t["merchantName"] and t["category"] == "fast_food"]
    corrected = await client.patch(
        f"/v1/me/transactions/{burger['id']}", json={"category": "eating_out"}, headers=headers
    )
    assert corrected.status_code == 200, corrected.text
    held = await rows_held(pool, user_id)

    response = await client.get("/v1/me/export", headers=headers)
    while response.status_code == 202:
        response = await client.get(response.headers["location"], headers=headers)

    assert response.status_code == 200, response.text
    sections = response.json()["sections"]
    transactions = sections["bank_transactions"]["items"]
    assert len(transactions) == held["bank_transactions"] > 300
    assert all(t["category"] and t["category_source"] and t["category_confidence"] for t in transactions)
    assert "merchant_key" not in transactions[0]  # a digest that only matches corrections: not the member's
    mine = next(t for t in transactions if t["transaction_id"] == burger["transactionId"])
    assert (mine["category"], mine["category_source"], mine["merchant_name"]) == (
        "eating_out",
        "member",
        burger["merchantName"],
    )
    [correction] = sections["category_corrections"]["items"]
    assert correction["category"] == "eating_out" and "merchant_key" not in correction
    assert correction["merchant"] == merchant_label("", burger["merchantName"])  # opened: the merchant's label


async def test_a_slow_export_answers_202_then_the_document(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers, user_id = await member_with_data(client, f"{uuid.uuid4()}@example.com")
    monkeypatch.setattr(export_route, "EXPORT_WAIT_SECONDS", 0.0)

    started = await client.get("/v1/me/export", headers=headers)

    assert started.status_code == 202, started.text
    status = started.json()
    assert status["status"] == "running" and status["sectionsDone"] <= status["sectionsTotal"]
    location = started.headers["location"]
    assert location == f"/v1/me/export/{status['exportId']}" and started.headers["retry-after"]
    finished: dict[str, object] = {}

    async def ready() -> bool:
        response = await client.get(location, headers=headers)
        assert response.status_code in (200, 202), response.text
        if response.status_code == 200:
            finished.update(response.json())
        return response.status_code == 200

    await eventually(ready)
    assert finished["exportId"] == status["exportId"] and finished["userId"] == str(user_id)

    # Another member cannot fetch it, and an unknown id is simply not found.
    stranger = await dev_token(client, f"{uuid.uuid4()}@example.com")
    assert (await client.get(location, headers=stranger)).status_code == 404
    assert (await client.get(f"/v1/me/export/{uuid.uuid4()}", headers=headers)).status_code == 404


async def test_the_retention_schedule_deletes_expired_exports(
    client: httpx.AsyncClient, dev_server: WorkflowEnvironment, system_settings: Settings, pool: AsyncConnectionPool
) -> None:
    headers, user_id = await member_with_data(client, f"{uuid.uuid4()}@example.com")
    fresh = (await client.get("/v1/me/export", headers=headers)).json()["exportId"]
    stale = uuid.uuid4()
    async with pool.connection() as connection:
        await connection.execute(
            "INSERT INTO member_exports (export_id, user_id, requested_at, completed_at)"
            " VALUES (%s, %s, now() - interval '25 hours', now() - interval '25 hours')",
            (stale, user_id),
        )

    await ensure_schedules(dev_server.client, system_settings)
    await dev_server.client.get_schedule_handle(RETENTION_SCHEDULE_ID).trigger()

    async def purged() -> bool:
        return (await client.get(f"/v1/me/export/{stale}", headers=headers)).status_code == 404

    await eventually(purged)
    assert (await client.get(f"/v1/me/export/{fresh}", headers=headers)).status_code == 200
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT details FROM audit_log WHERE action = 'retention.purge' ORDER BY id DESC LIMIT 1"
        )
        row = await cursor.fetchone()
    assert row is not None and row[0]["deleted"]["member_exports"] >= 1


async def test_every_binary_member_column_is_declared_sealed_or_not_exported(pool: AsyncConnectionPool) -> None:
    """A new sensitive column must be declared, or the export would hand out ciphertext."""
    async with pool.connection() as connection:
        tables = [table for table, _ in await member_tables(connection)] + ["members"]
        cursor = await connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE data_type = 'bytea' AND table_name = ANY(%s)",
            (tables,),
        )
        binary = {(table, column) for table, column in await cursor.fetchall()}
    assert binary == SEALED | NOT_EXPORTED
