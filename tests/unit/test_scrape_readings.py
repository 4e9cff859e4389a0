"""What `GET /metrics` reads from the database is read at most once per interval, however many
scrapes come at once, and a database that fails or hangs leaves the last readings in place."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from badges.api import metrics
from badges.api.metrics import ScrapeReadings
from badges.db.outbox import TailLag
from badges.db.rewards import BudgetState, LedgerCount


class FakeDatabase:
    def __init__(self) -> None:
        self.reads = 0
        self.fail = False
        self.hang = False

    async def count_ledger(self, engine: Any, *, after_id: int = 0) -> LedgerCount:
        self.reads += 1
        if self.hang:
            await asyncio.sleep(3600)
        if self.fail:
            raise OSError("database down")
        return LedgerCount({"granted": 3 + self.reads} if after_id == 0 else {}, 100)

    async def budget_state(self, engine: Any, period: str) -> list[BudgetState]:
        return [BudgetState("*", "points", "", 100, "defer", 40)]

    async def pending_reviews(self, engine: Any) -> int:
        return 2

    async def outbox_lag(self, pool: Any, tails: list[int]) -> tuple[int, list[TailLag]]:
        return 10, [TailLag(tail, 10 - tail, 1.5 if tail < 10 else 0.0) for tail in tails]


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> FakeDatabase:
    fake = FakeDatabase()
    for name in ("count_ledger", "budget_state", "pending_reviews", "outbox_lag"):
        monkeypatch.setattr(metrics, name, getattr(fake, name))
    return fake


def exposition(readings: ScrapeReadings) -> str:
    registry = CollectorRegistry()
    registry.register(readings)
    return generate_latest(registry).decode()


async def test_a_storm_of_scrapes_reads_the_database_once(database: FakeDatabase) -> None:
    readings = ScrapeReadings(None, None, lambda: {"": 7}, max_age=60)  # type: ignore[arg-type]
    await asyncio.gather(*(readings.refresh() for _ in range(50)))
    for _ in range(50):
        await readings.refresh()
    assert database.reads == 1
    text = exposition(readings)
    assert 'badges_rewards{status="granted"} 4.0' in text
    assert 'badges_reward_budget_remaining{currency="",kind="points",scope="*"} 60.0' in text
    assert "badges_outbox_lag_rows 3.0" in text and "badges_outbox_lag_seconds 1.5" in text
    assert "badges_review_queue_pending 2.0" in text


async def test_the_readings_are_read_again_once_they_are_old(database: FakeDatabase) -> None:
    readings = ScrapeReadings(None, None, lambda: {"101": 10, "102": 4}, max_age=0)  # type: ignore[arg-type]
    await readings.refresh()
    await readings.refresh()
    assert database.reads == 2
    text = exposition(readings)
    assert 'badges_outbox_lag_rows{pid="101"} 0.0' in text and 'badges_outbox_lag_rows{pid="102"} 6.0' in text


async def test_a_failing_or_hanging_database_leaves_the_last_readings(
    database: FakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "READ_TIMEOUT_SECONDS", 0.05)
    readings = ScrapeReadings(None, None, lambda: {"": 10}, max_age=0)  # type: ignore[arg-type]
    await readings.refresh()
    database.fail = True
    await readings.refresh()
    assert 'badges_rewards{status="granted"} 4.0' in exposition(readings)
    database.fail, database.hang = False, True
    await readings.refresh()  # gives up after the timeout
    assert 'badges_rewards{status="granted"} 4.0' in exposition(readings)
