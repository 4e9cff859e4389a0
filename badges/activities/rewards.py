"""`release_deferred_rewards`: grant deferred rewards, oldest first, from this month's budgets."""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from badges.db.rewards import release_deferred


class RewardActivities:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @activity.defn
    async def release_deferred_rewards(self) -> int:
        return await release_deferred(self._pool, datetime.now(UTC))
