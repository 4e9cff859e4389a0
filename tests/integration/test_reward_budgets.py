"""Reward budgets against real PostgreSQL: what a budget says about a reward over its cap, and what a
budget created mid-month counts as used."""

from __future__ import annotations

import random
import string
import uuid
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.db.keys import KeyStore
from badges.db.rewards import RewardClaim, budget_period, budget_state, grant_rewards, member_rewards, set_budget
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
