"""The breaker per provider, with real parts: the sync activity against the local Yodlee (an
outage armed with its faults) and PostgreSQL holding the breaker. Distinct connections failing
open it; then syncs call nothing and answer `ProviderPaused` with the wait; after the cool-down
one probe goes, and its success lets everyone through again. A paused connection's member is
told their bank's data is delayed, and their behaviour decisions wait."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from badges.activities.banking import PROVIDER_PAUSED_MESSAGE, BankingActivities, ProviderHealth
from badges.db.keys import KeyStore
from badges.domain.provider_breaker import BreakerPolicy
from badges.insights.categoriser import load as load_categoriser
from badges.messages.bank_sync import PROVIDER_PAUSED, ConnectionRef, StatusChange
from badges.metrics import process_registry
from tests.banking.test_yodlee import make_provider
from tests.integration.test_open_banking import consenting_member, wait_status
from tests.integration.test_yodlee import link

pytestmark = pytest.mark.usefixtures("worker")

POLICY = BreakerPolicy(connections_to_open=3, cool_down=timedelta(seconds=2), max_cool_down=timedelta(seconds=8))


@pytest.fixture
async def outage(yodlee_bank: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=yodlee_bank) as bank:
        yield bank
        await bank.delete("/_sandbox/faults")


async def calls(bank: httpx.AsyncClient) -> int:
    return int((await bank.get("/_sandbox/calls")).json()["calls"])


async def test_many_connections_failing_pause_the_provider_until_a_probe_succeeds(
    client: httpx.AsyncClient,
    yodlee_bank: str,
    outage: httpx.AsyncClient,
    pool: AsyncConnectionPool,
    keys: KeyStore,
    dev_server: WorkflowEnvironment,
) -> None:
    connections: list[str] = []
    members = []
    for user in ("user_good", "user_saver", "user_spender", "user_gambler"):
        headers, user_id = await consenting_member(client)
        linked = await link(client, headers, yodlee_bank, user)
        await wait_status(client, headers, "active")
        connections.append(linked.json()["id"])
        members.append((headers, user_id))
    health = ProviderHealth()
    activities = BankingActivities(
        pool,
        keys,
        {"yodlee": make_provider(yodlee_bank)},
        dev_server.client,
        await asyncio.to_thread(load_categoriser),
        POLICY,
        health,
    )
    registry = process_registry(keys, providers=health)

    def metric(name: str) -> float | None:
        return registry.get_sample_value(name, {"provider": "yodlee"})

    def syncs(outcome: str) -> float | None:
        return registry.get_sample_value("badges_provider_syncs_total", {"provider": "yodlee", "outcome": outcome})

    env = ActivityEnvironment()

    async def sync(connection: str) -> ApplicationError | None:
        try:
            await env.run(activities.sync_connection, ConnectionRef(connection_id=uuid.UUID(connection)))
        except ApplicationError as error:
            return error
        return None

    await outage.post("/_sandbox/faults", json={"status": 503, "count": None})
    # Two connections failing is not yet many: each still asks the provider.
    for connection in connections[:2]:
        failed = await sync(connection)
        assert failed is not None and failed.type == "unavailable" and not failed.non_retryable
    assert (await sync(connections[0])) is not None  # the same one again: still two distinct
    before = await calls(outage)
    assert (await sync(connections[2])).type == "unavailable"  # type: ignore[union-attr]
    assert await calls(outage) > before  # the third distinct failure asked, and opened the breaker

    # Open: nobody calls the provider, each is told how long to wait.
    before = await calls(outage)
    for connection in connections:
        paused = await sync(connection)
        assert paused is not None and paused.type == PROVIDER_PAUSED and paused.non_retryable
        assert 0 < float(paused.details[0]) <= 2
    assert await calls(outage) == before
    # Operators see it: the provider's breaker open, syncs failed and paused.
    assert metric("badges_provider_breaker_open") == 1.0
    assert (syncs("failed"), syncs("paused"), syncs("ok")) == (4.0, 4.0, 0.0)

    # Cool-down over, still down: one probe asks, fails, and the pause doubles.
    await asyncio.sleep(2.1)
    assert (await sync(connections[3])).type == "unavailable"  # type: ignore[union-attr]
    assert await calls(outage) > before
    reopened = await sync(connections[0])
    assert reopened is not None and reopened.type == PROVIDER_PAUSED and 2 < float(reopened.details[0]) <= 4

    # The provider recovers: after the cool-down one probe goes through, and everyone after it.
    await outage.delete("/_sandbox/faults")
    await asyncio.sleep(4.1)
    assert await sync(connections[1]) is None
    for connection in connections:
        assert await sync(connection) is None
    assert metric("badges_provider_breaker_open") == 0.0 and syncs("ok") == 5.0
    assert (metric("badges_provider_sync_seconds_count"), syncs("failed")) == (10.0, 5.0)
    assert (metric("badges_provider_sync_seconds_sum") or 0) > 0  # latency: sum / count

    # The member of a paused connection is told, in words, that their bank's data is delayed.
    _, user_id = members[0]
    change = StatusChange(connection_id=uuid.UUID(connections[0]), status="degraded", error=PROVIDER_PAUSED)
    await env.run(activities.record_status, change)
    async with pool.connection() as db:
        row = await (
            await db.execute(
                "SELECT payload FROM outbox WHERE user_id = %s AND kind = 'insight' ORDER BY id DESC LIMIT 1",
                (user_id,),
            )
        ).fetchone()
    assert row is not None
    assert row[0] == {
        "type": "bank_connection",
        "connectionId": connections[0],
        "status": "degraded",
        "reason": "provider_unavailable",
        "message": PROVIDER_PAUSED_MESSAGE,
    }
