"""Reward budgets against real PostgreSQL: what a budget says about a reward over its cap, what a
budget created mid-month counts as used, and the rewards metric as rows are added."""

from __future__ import annotations

import random
import string
import uuid
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.api.metrics import LedgerTally
from badges.db.keys import KeyStore
from badges.db.rewards import (
    RewardClaim,
    budget_period,
    budget_state,
    grant_rewards,
    ledger_totals,
    member_rewards,
    set_budget,
)
from tests.conftest import create_member


def _currency() -> str:
    """A currency of the test's own, so its programme-wide ('*') budget caps nothing else."""
    return "Q" + "".join(random.choices(string.ascii_uppercase, k=2))


async def _grant(pool: AsyncConnectionPool, member: uuid.UUID, currency: str, amount: int) -> None:
    claim = RewardClaim("budget-test", str(uuid.uuid4()), 1, "money", amount, currency, datetime.now(UTC))
    async with pool.connection() as connection, connection.transaction():
        await grant_rewards(connection, member, [claim])


async def test_a_reward_larger_than_the_cap_says_it_exceeds_the_cap(
    engine: AsyncEngine, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    member, currency = await create_member(engine, keys), _currency()
    await set_budget(engine, "*", "money", currency, 40, "withhold")
    await _grant(pool, member, currency, 50)
    [record] = await member_rewards(engine, member)
    assert record.status == "withheld"
    assert record.reason == "reward of 50 exceeds the monthly budget for the programme (40)"


async def test_a_budget_created_mid_month_counts_what_the_month_already_granted(
    engine: AsyncEngine, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    member, currency = await create_member(engine, keys), _currency()
    await _grant(pool, member, currency, 50)  # no budget yet: granted
    await set_budget(engine, "*", "money", currency, 100, "defer")
    period = budget_period(datetime.now(UTC))
    [state] = [s for s in await budget_state(engine, period) if s.currency == currency]
    assert state.used == 50
    await _grant(pool, member, currency, 60)  # 50 + 60 is over 100
    statuses = [record.status for record in await member_rewards(engine, member)]
    assert statuses == ["granted", "deferred"]
    [state] = [s for s in await budget_state(engine, period) if s.currency == currency]
    assert state.used == 50


async def test_the_rewards_metric_counts_the_rows_added_since_its_whole_count(
    engine: AsyncEngine, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    tally = LedgerTally(engine, recount_every=3600)  # one whole count, then only what is added
    before = await tally.read()
    assert before == await ledger_totals(engine)
    member, currency = await create_member(engine, keys), _currency()
    await _grant(pool, member, currency, 50)  # no budget yet: granted
    await set_budget(engine, "*", "money", currency, 60, "defer")
    await _grant(pool, member, currency, 20)  # over the budget: deferred
    after = await tally.read()
    assert after == await ledger_totals(engine)
    assert after.get("granted", 0) == before.get("granted", 0) + 1
    assert after.get("deferred", 0) == before.get("deferred", 0) + 1
    assert await tally.read() == after  # nothing added: nothing counted twice
