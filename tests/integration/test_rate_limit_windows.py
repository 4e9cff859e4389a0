"""The shared rate-limit counters (`db/rate_limits.py`): one statement decides, however many
processes hit a bucket at once, and windows are swept once they can no longer count."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool

from badges.db.rate_limits import Take, sweep, take_from


async def test_concurrent_hits_on_one_bucket_allow_exactly_the_amount(pool: AsyncConnectionPool) -> None:
    window = Take(f"test-race/{uuid.uuid4()}", 600, 60, 0.0, 7, datetime.now(UTC) + timedelta(minutes=2))
    counts = await asyncio.gather(*(take_from(pool, window) for _ in range(30)))
    assert sum(count.allowed for count in counts) == 7
    assert max(count.hits for count in counts) == 7  # refused hits are not counted


async def test_the_previous_window_counts_by_its_weight(pool: AsyncConnectionPool) -> None:
    bucket = f"test-slide/{uuid.uuid4()}"
    expires = datetime.now(UTC) + timedelta(minutes=2)
    for _ in range(4):
        assert (await take_from(pool, Take(bucket, 600, 60, 0.0, 4, expires))).allowed
    # Half of the previous window still in view: 4 x 0.5 = 2, so two more fit in the next one.
    counts = [await take_from(pool, Take(bucket, 660, 60, 0.5, 4, expires)) for _ in range(3)]
    assert [count.allowed for count in counts] == [True, True, False]
    assert counts[-1].previous_hits == 4 and counts[-1].hits == 2


async def test_expired_rate_windows_are_swept(pool: AsyncConnectionPool) -> None:
    bucket = f"test-sweep/{uuid.uuid4()}"
    now = datetime.now(UTC)
    expired = Take(f"{bucket}/old", 0, 60, 0.0, 5, now - timedelta(seconds=1))
    live = Take(f"{bucket}/new", 60, 60, 0.0, 5, now + timedelta(minutes=2))
    assert (await take_from(pool, expired)).allowed and (await take_from(pool, live)).allowed

    assert await sweep(pool) >= 1

    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT bucket FROM rate_limit_windows WHERE bucket LIKE %s", (f"{bucket}/%",)
        )
        assert await cursor.fetchall() == [(f"{bucket}/new",)]
