"""What erasure guarantees, held to the database: the inventory in docs/personal-data.md names
every column and what erasure does to it, and the schema keeps its word; and after a real erasure
of a member with everything the programme can hold about one, no table holds anything of theirs
but the pseudonymous rows the inventory keeps."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from badges.db.exports import SEALED
from tests.integration.test_open_banking import link, wait_status
from tests.sandbox.conftest import Sandbox
from tests.support import dev_token, eventually, real_time_event

INVENTORY = Path(__file__).parents[2] / "docs" / "personal-data.md"
ROW = re.compile(r"^\| `([a-z_0-9]+)` \| `([a-z_0-9]+|\*)` \| (sealed|deleted|destroyed|kept|programme) \|")
ERASED = {"sealed", "deleted"}  # the row goes with the member
# Sealed with the member's key but not opened for an export: the bank's access token, and the
# export's own sealed sections.
SEALED_NOT_EXPORTED = {("bank_connections", "access_token"), ("member_export_parts", "sealed")}


def inventory() -> dict[tuple[str, str], str]:
    rows: dict[tuple[str, str], str] = {}
    for line in INVENTORY.read_text().splitlines():
        if match := ROW.match(line):
            table, column, handling = match.groups()
            assert (table, column) not in rows, f"listed twice: {table}.{column}"
            rows[(table, column)] = handling
    return rows


async def schema(pool: AsyncConnectionPool) -> tuple[dict[tuple[str, str], tuple[str, bool]], list[tuple[str, ...]]]:
    """Every column (type, nullable), and every foreign key (table, column, referenced, on delete)."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT table_name, column_name, data_type, is_nullable = 'YES' FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name <> 'alembic_version'"
        )
        columns = {(table, column): (kind, nullable) for table, column, kind, nullable in await cursor.fetchall()}
        cursor = await connection.execute(
            "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, c.confdeltype::text"
            " FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
            " WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace"
        )
        return columns, [tuple(row) for row in await cursor.fetchall()]


async def test_every_column_is_in_the_inventory_and_the_schema_keeps_its_word(pool: AsyncConnectionPool) -> None:
    listed = inventory()
    columns, foreign_keys = await schema(pool)
    whole_tables = {table for table, column in listed if column == "*"}
    tables = {table for table, _ in columns}

    missing = sorted(key for key in columns if key[0] not in whole_tables and key not in listed)
    assert not missing, f"say in docs/personal-data.md what erasure does to {missing}"
    stale = sorted(
        key for key in listed if (key[1] == "*" and key[0] not in tables) or (key[1] != "*" and key not in columns)
    )
    assert not stale, f"docs/personal-data.md lists what the database no longer has: {stale}"

    # Tables whose rows go with the member reach `members` through cascading, NOT NULL keys.
    erased_with_member = {"members"}
    while True:
        reached = {
            table
            for table, column, parent, on_delete in foreign_keys
            if parent in erased_with_member and on_delete == "c" and not columns[(table, column)][1]
        }
        if reached <= erased_with_member:
            break
        erased_with_member |= reached
    by_table: dict[str, set[str]] = defaultdict(set)
    for (table, _), handling in listed.items():
        by_table[table].add(handling)
    references_members = {table for table, _, parent, _ in foreign_keys if parent == "members"}
    for table, handlings in by_table.items():
        if handlings & ERASED:
            assert handlings <= ERASED, f"{table}: a row that goes with the member cannot also keep columns"
            assert table in erased_with_member, f"{table} is not deleted with the member"
        else:
            assert table not in references_members, f"{table} references members but says it is {handlings}"

    sealed = {key for key, handling in listed.items() if handling == "sealed"}
    assert all(columns[key][0] == "bytea" for key in sealed), "a sealed column holds ciphertext"
    assert sealed == SEALED | SEALED_NOT_EXPORTED


async def scan(pool: AsyncConnectionPool, needles: list[str]) -> dict[str, list[str]]:
    """Every row of every table that holds one of `needles` in plaintext, by table: in its text
    form, or as bytes in a binary column."""
    columns, _ = await schema(pool)
    found: dict[str, list[str]] = defaultdict(list)
    async with pool.connection() as connection:
        for table in sorted({table for table, _ in columns}):
            binary = [column for (name, column), (kind, _) in columns.items() if name == table and kind == "bytea"]
            conditions = [sql.SQL("t::text LIKE ANY (%(patterns)s)")]
            conditions += [sql.SQL("position(needle IN t.{}) > 0").format(sql.Identifier(column)) for column in binary]
            query = sql.SQL(
                "SELECT t::text FROM {} AS t WHERE {} OR EXISTS (SELECT 1 FROM unnest(%(needles)s::bytea[]) AS needle"
                " WHERE {})"
            ).format(
                sql.Identifier(table),
                conditions[0],
                sql.SQL(" OR ").join(conditions[1:]) if binary else sql.SQL("false"),
            )
            cursor = await connection.execute(
                query, {"patterns": [f"%{needle}%" for needle in needles], "needles": [n.encode() for n in needles]}
            )
            for (row,) in await cursor.fetchall():
                found[table].append(row)
    return dict(found)


@pytest.mark.usefixtures("worker")
async def test_after_erasure_nothing_of_the_member_is_left_but_what_the_inventory_keeps(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool
) -> None:
    marker = uuid.uuid4().hex  # in everything the member (or their app) writes, their token's `sub` too
    sub = f"{marker}@example.com"
    headers = await dev_token(client, sub)
    user_id = uuid.UUID((await client.get("/v1/me", headers=headers)).json()["userId"])
    expires = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    consent = {"purpose": f"my own words {marker}", "expiresAt": expires}
    scopes = {"open_banking": consent, "demographics": consent, "behaviour_tracking": consent}
    assert (await client.put("/v1/me/consent", json={"scopes": scopes}, headers=headers)).status_code == 202

    async def consented() -> bool:
        granted = (await client.get("/v1/me/consent", headers=headers)).json()["scopes"]
        return all(granted.get(scope, {}).get("status") == "active" for scope in scopes)

    await eventually(consented)
    linked = await link(client, headers, sandbox_bank, "user_saver")
    assert linked.status_code == 201, linked.text
    connection_id = linked.json()["id"]
    await wait_status(client, headers, "active")
    [transaction] = (await client.get("/v1/me/transactions?limit=1", headers=headers)).json()["transactions"]
    corrected = await client.patch(
        f"/v1/me/transactions/{transaction['id']}", json={"category": "other"}, headers=headers
    )
    assert corrected.status_code == 200, corrected.text
    goal = {"kind": "save", "name": f"my goal {marker}", "targetMinor": 100_000}
    assert (await client.post("/v1/me/goals", json=goal, headers=headers)).status_code == 201
    profile = {
        "timezone": "Pacific/Chatham",
        "demographics": {"postcode": "SW1A", "ageRange": "25-34", "dependants": 2, "salaryBracket": "30-45k"},
    }
    assert (await client.put("/v1/me/profile", json=profile, headers=headers)).is_success
    # More uses of a calculator in a minute than are plausible: a burst held for review.
    for index in range(35):
        event = real_time_event(f"{marker}-{index}", sub, note=f"my note {marker}")
        assert (await client.post("/v1/events", json=event, headers=headers)).status_code == 202

    async def held() -> bool:  # the events themselves are sealed: their rows name the member
        return "review_events" in await scan(pool, [str(user_id)])

    await eventually(held, 30)
    # The burst's first uses earned Calculator explorer: its Open Badges credential, claimed.
    claimed = await client.get("/v1/me/badges/calculator-explorer/credentials/1", headers=headers)
    assert claimed.status_code == 200, claimed.text
    export = await client.get("/v1/me/export", headers=headers)
    while export.status_code == 202:
        export = await client.get(export.headers["location"], headers=headers)
    assert export.status_code == 200

    needles = [str(user_id), marker, connection_id]
    before = await scan(pool, needles)
    assert {
        "members",
        "consents",
        "event_receipts",
        "outbox",
        "review_queue",
        "review_events",
        "member_exports",
        "bank_connections",
        "bank_accounts",
        "bank_transactions",
        "category_corrections",
        "member_goals",
        "credentials",
        "data_keys",
        "audit_log",
    } <= set(before), sorted(before)
    assert set(await scan(pool, [marker])) >= {"consents", "event_receipts", "review_queue"}  # the scan sees it

    erased = await client.delete("/v1/me", headers=headers)
    assert erased.status_code == 200, erased.text

    after = await scan(pool, needles)
    assert set(after) <= {"data_keys", "audit_log"}, {table: after[table][:2] for table in after}
    assert all(row.split(",")[2] == "" for row in after.get("data_keys", [])), "the key material is gone"
    assert await scan(pool, [marker, connection_id]) == {}, "no text the member wrote, no bank reference"
