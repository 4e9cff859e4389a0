"""`dataRetentionDays` does what it says: the daily purge keeps bank transactions for the longest
retention any active badge asks (an inactive badge's does not count; 730 days when none says)
and deletes what is older, on the real database, with a member's synced history in it. The purge
runs in a transaction rolled back at the end, so other tests' data stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from badges.db.retention import DEFAULT_BANK_RETENTION, bank_retention, purge
from badges.domain.definitions import BadgeDefinition, BadgeSpec
from tests.integration.test_open_banking import consenting_member, wait_status
from tests.integration.test_yodlee import link

pytestmark = pytest.mark.usefixtures("worker")


def badge(badge_id: str, days: int, *, active: bool = True) -> BadgeDefinition:
    rule: dict[str, Any] = {"kind": "avoidance", "category": "gambling", "windowDays": 30}
    spec = BadgeSpec.model_validate(
        {"name": badge_id, "rule": rule, "active": active, "config": {"openBanking": {"dataRetentionDays": days}}}
    )
    return BadgeDefinition.from_spec(badge_id, 1, spec)


async def test_bank_transactions_are_kept_as_long_as_the_longest_active_badge_asks_then_purged(
    client: httpx.AsyncClient, yodlee_bank: str, pool: AsyncConnectionPool
) -> None:
    assert bank_retention([]) == DEFAULT_BANK_RETENTION
    keep_for = bank_retention([badge("a", 200), badge("b", 400), badge("retired", 3000, active=False)])
    assert keep_for == timedelta(days=400)

    headers, user_id = await consenting_member(client)
    assert (await link(client, headers, yodlee_bank, "user_saver")).status_code == 201
    await wait_status(client, headers, "active")  # 24 months synced
    now = datetime.now(UTC)
    cutoff = now - keep_for  # a transaction posted on its day is older than that from midnight

    async def days(connection: psycopg.AsyncConnection[Any]) -> tuple[int, int]:
        row = await (
            await connection.execute(
                "SELECT count(*) FILTER (WHERE posted_date < %s), count(*) FROM bank_transactions WHERE user_id = %s",
                (cutoff, user_id),
            )
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    async with pool.connection() as connection:
        older, total = await days(connection)
        assert older > 100 and total > older
        async with connection.transaction():
            deleted = await purge(connection, now, keep_for)
            assert deleted["bank_transactions"] >= older
            assert await days(connection) == (0, total - older)  # older gone, the rest kept
            raise psycopg.Rollback  # the transaction's block rolls back and goes on
        assert await days(connection) == (older, total)
