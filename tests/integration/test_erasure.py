"""Erasure end to end: afterwards no rows, the key destroyed, the member's recorded history no
longer decodes, every /v1/me path answers 410, and the audit log says what happened, not who."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from google.protobuf.json_format import MessageToDict
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from badges.config import Settings
from badges.db.erasure import member_tables
from badges.db.keys import KeyStore, KeyUnavailableError, MasterKeys
from badges.domain.identity import consent_workflow_id, erasure_workflow_id, user_badges_workflow_id
from badges.messages.erasure import ErasureInput
from badges.temporal.codec import ENCODING, KEY_ID_METADATA
from badges.workflows.erasure import ErasureWorkflow
from tests.integration.test_integrations import post_signed, register
from tests.support import dev_token, eventually, real_time_event, sse_events

pytestmark = pytest.mark.usefixtures("worker")

MERCHANT = "Lucky Bets Ltd"


async def member_with_data(client: httpx.AsyncClient, sub: str) -> tuple[dict[str, str], uuid.UUID]:
    """A member with consent, events, progress, an award and a time zone."""
    headers = await dev_token(client, sub)
    user_id = uuid.UUID((await client.get("/v1/me", headers=headers)).json()["userId"])
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    consent = {"scopes": {"behaviour_tracking": {"purpose": "badges", "expiresAt": expires}}}
    assert (await client.put("/v1/me/consent", json=consent, headers=headers)).status_code == 202
    assert (await client.put("/v1/me/profile", json={"timezone": "Europe/London"}, headers=headers)).is_success
    for index in range(3):
        event = real_time_event(f"e-{index}", sub, calculatorId=f"calc-{index}", merchant=MERCHANT)
        assert (await client.post("/v1/events", json=event, headers=headers)).status_code == 202

    async def awarded() -> bool:
        badges = (await client.get("/v1/me/badges", headers=headers)).json()["badges"]
        return any(badge["badgeId"] == "calculator-explorer" and badge["awarded"] for badge in badges)

    await eventually(awarded)
    return headers, user_id


async def rows_held(pool: AsyncConnectionPool, user_id: uuid.UUID) -> dict[str, int]:
    async with pool.connection() as connection:
        counts = {}
        for table, column in await member_tables(connection):
            query = sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
                sql.Identifier(table), sql.Identifier(column)
            )
            row = await (await connection.execute(query, (user_id,))).fetchone()
            counts[table] = row[0] if row else 0
        row = await (await connection.execute("SELECT count(*) FROM members WHERE id = %s", (user_id,))).fetchone()
        counts["members"] = row[0] if row else 0
    return {table: count for table, count in counts.items() if count}


async def sealed_history_payloads(client: Client, workflow_id: str) -> list[Payload]:
    """The encrypted input payloads of a workflow's start and signals, as Temporal stores them."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    found: list[Payload] = []
    for event in history.events:
        for attributes in (
            event.workflow_execution_started_event_attributes,
            event.workflow_execution_signaled_event_attributes,
        ):
            found.extend(p for p in attributes.input.payloads if p.metadata.get("encoding") == ENCODING)
    return found


async def test_erasure_removes_everything_and_leaves_nothing_readable(
    client: httpx.AsyncClient,
    dev_server: WorkflowEnvironment,
    pool: AsyncConnectionPool,
    engine: AsyncEngine,
    system_settings: Settings,
) -> None:
    sub = f"{uuid.uuid4()}@example.com"
    headers, user_id = await member_with_data(client, sub)
    assert {"awards", "badge_progress", "consents", "event_receipts", "outbox"} <= set(await rows_held(pool, user_id))
    payloads = await sealed_history_payloads(dev_server.client, user_badges_workflow_id(user_id))
    assert payloads, "the member's history holds encrypted payloads"
    staff = await dev_token(client, f"cmp-{uuid.uuid4()}", ["compliance"])
    decoded = await client.post("/codec/decode", json={"payloads": [MessageToDict(payloads[0])]}, headers=staff)
    assert decoded.json()["payloads"][0] != MessageToDict(payloads[0])  # readable before the erasure

    async with client.stream("GET", "/v1/me/stream", headers=headers) as stream:
        erased = await client.delete("/v1/me", headers=headers)
        assert erased.status_code == 200, erased.text
        assert erased.json()["status"] == "erased"
        reference = erased.json()["reference"]
        # The open stream ends.
        await asyncio.wait_for(anext(aiter(sse_events(stream)), None), 10)

    # Every /v1/me path, and the event door, answer 410 to the erased membership's tokens.
    for method, path in [
        ("GET", "/v1/me"),
        ("GET", "/v1/me/badges"),
        ("GET", "/v1/me/consent"),
        ("GET", "/v1/me/rewards"),
        ("GET", "/v1/me/export"),
        ("GET", "/v1/me/stream"),
        ("DELETE", "/v1/me"),
    ]:
        response = await client.request(method, path, headers=headers)
        assert response.status_code == 410, (path, response.status_code)
        assert response.json()["type"].endswith("member-erased")
    event = real_time_event("after", sub)
    assert (await client.post("/v1/events", json=event, headers=headers)).status_code == 410

    # No rows; the key is destroyed; the workflows ended.
    assert await rows_held(pool, user_id) == {}
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT wrapped_key IS NULL, destroyed_at IS NOT NULL FROM data_keys WHERE owner = %s", (str(user_id),)
        )
        assert await cursor.fetchall() == [(True, True)]
    for workflow_id in (user_badges_workflow_id(user_id), consent_workflow_id(user_id)):
        description = await dev_server.client.get_workflow_handle(workflow_id).describe()
        assert description.status == WorkflowExecutionStatus.TERMINATED

    # The recorded history cannot be decoded any more: not by a fresh process, not by staff.
    fresh = KeyStore(engine, MasterKeys(system_settings.parsed_master_keys))
    with pytest.raises(KeyUnavailableError):
        await fresh.key_by_id(payloads[0].metadata[KEY_ID_METADATA].decode())
    sealed = await client.post("/codec/decode", json={"payloads": [MessageToDict(payloads[0])]}, headers=staff)
    assert sealed.status_code == 200
    assert sealed.json()["payloads"][0] == MessageToDict(payloads[0])

    # The audit log tells the story by reference, naming nobody.
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT action, actor, subject, details FROM audit_log WHERE resource = %s ORDER BY id",
            (f"erasure/{reference}",),
        )
        records = await cursor.fetchall()
    actions = [action for action, *_ in records]
    assert actions[0] == "erasure.requested" and actions[-1] == "erasure.completed"
    assert {"erasure.blocked", "erasure.workflows_ended", "erasure.rows_deleted", "erasure.key_destroyed"} <= set(
        actions
    )
    assert all(subject is None for _, _, subject, _ in records)
    told = json.dumps([list(map(str, record)) for record in records])
    assert str(user_id) not in told and sub not in told and MERCHANT not in told

    # For good: a token issued later (an app refreshing silently) does not sign them up again.
    await asyncio.sleep(1.1)
    again = await dev_token(client, sub)
    assert (await client.get("/v1/me", headers=again)).status_code == 410


async def test_erasure_runs_again_without_changing_anything(
    client: httpx.AsyncClient, dev_server: WorkflowEnvironment, pool: AsyncConnectionPool, system_settings: Settings
) -> None:
    headers, user_id = await member_with_data(client, f"{uuid.uuid4()}@example.com")
    assert (await client.delete("/v1/me", headers=headers)).status_code == 200

    # As if resumed from the start after a crash: every step finds its work done.
    again = await dev_server.client.execute_workflow(
        ErasureWorkflow.run,
        ErasureInput(user_id=user_id),
        id=erasure_workflow_id(user_id),
        task_queue=system_settings.task_queue,
    )
    assert again.rows_deleted == {"members": 0}
    assert again.keys_destroyed == 0 and again.workflows_ended == 0
    assert await rows_held(pool, user_id) == {}


async def test_an_integration_cannot_bring_an_erased_member_back(client: httpx.AsyncClient) -> None:
    sub = f"{uuid.uuid4()}@example.com"
    headers, _ = await member_with_data(client, sub)
    assert (await client.delete("/v1/me", headers=headers)).status_code == 200
    integration_id, secret = await register(client, ["tool_usage"])
    body = json.dumps(real_time_event("late", sub)).encode()
    response = await post_signed(client, integration_id, body, secret)
    assert response.status_code == 410


async def test_every_reference_to_a_member_cascades(pool: AsyncConnectionPool) -> None:
    """Erasure deletes the `members` row and relies on ON DELETE CASCADE for everything else."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT conrelid::regclass::text, confdeltype FROM pg_constraint"
            " WHERE contype = 'f' AND confrelid = 'members'::regclass"
        )
        keys = await cursor.fetchall()
    assert keys and all(action == "c" for _, action in keys), keys
