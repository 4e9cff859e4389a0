"""A behaviour evaluation tells the member only what the previous one did not, and opens nothing of
the previous one to know it: the notices it gave are kept as keyed digests beside its sealed
document. A document kept before digests were is opened once, and its notices still count."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from badges.activities.behaviour import BehaviourActivities
from badges.config import Settings
from badges.db.insights import member_insights
from badges.db.keys import DIGEST_BYTES, KeyStore, MasterKeys
from badges.messages.behaviour import EvaluationRequest
from tests.integration.test_behaviour import evaluated_member
from tests.sandbox.conftest import Sandbox

pytestmark = pytest.mark.usefixtures("worker")
# Answering for a moment past any evaluation the member's workflow makes while the test runs, so
# only the test's own are kept (and say anything).
AHEAD = timedelta(minutes=10)


class CountedKeys(KeyStore):
    """The test's own key store, counting what is opened."""

    opened = 0

    async def unseal(self, sealed: bytes) -> bytes:
        self.opened += 1
        return await super().unseal(sealed)


async def insights_sent(pool: AsyncConnectionPool, user_id: uuid.UUID) -> int:
    async with pool.connection() as db:
        cursor = await db.execute("SELECT count(*) FROM outbox WHERE user_id = %s AND kind = 'insight'", (user_id,))
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def notice_digests(pool: AsyncConnectionPool, user_id: uuid.UUID) -> bytes | None:
    async with pool.connection() as db:
        cursor = await db.execute("SELECT notice_digests FROM member_insights WHERE user_id = %s", (user_id,))
        row = await cursor.fetchone()
    assert row is not None
    return bytes(row[0]) if row[0] is not None else None


async def test_an_evaluation_knows_the_notices_given_without_opening_the_previous_one(
    client: httpx.AsyncClient,
    sandbox_bank: Sandbox,
    pool: AsyncConnectionPool,
    engine: AsyncEngine,
    dev_server: WorkflowEnvironment,
    system_settings: Settings,
) -> None:
    headers, _ = await evaluated_member(client, sandbox_bank, "user_gambler")
    user_id = uuid.UUID((await client.get("/v1/me", headers=headers)).json()["userId"])
    keys = CountedKeys(engine, MasterKeys(system_settings.parsed_master_keys))
    behaviour = BehaviourActivities(pool, engine, keys, dev_server.client, system_settings)
    ahead = datetime.now(UTC) + AHEAD

    async def evaluate(seq: int) -> None:
        request = EvaluationRequest(user_id=user_id, seq=seq, as_of=ahead + timedelta(seconds=seq))
        assert (await behaviour.evaluate_behaviour(request)).evaluated

    await evaluate(1)
    kept = await member_insights(pool, keys, user_id)
    assert kept is not None and kept[1]["notices"], "the gambler's history has something to say"
    digests = await notice_digests(pool, user_id)
    assert digests and len(digests) == DIGEST_BYTES * len({notice["key"] for notice in kept[1]["notices"]})
    sent = await insights_sent(pool, user_id)
    keys.opened = 0
    await evaluate(2)
    assert keys.opened == 0  # the previous evaluation stays sealed
    assert await insights_sent(pool, user_id) == sent  # and nothing it said is said again

    # As kept before digests were: the previous document is opened, once, and its notices count.
    async with pool.connection() as db:
        await db.execute("UPDATE member_insights SET notice_digests = NULL WHERE user_id = %s", (user_id,))
    await evaluate(3)
    assert keys.opened == 1
    assert await insights_sent(pool, user_id) == sent
    assert await notice_digests(pool, user_id) == digests
