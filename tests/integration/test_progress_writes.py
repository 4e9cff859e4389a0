"""The batch write behind `record_progress`, against real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.db.keys import KeyStore
from badges.db.outbox import OUTBOX_CHANNEL
from badges.db.progress import LOCK_OUTBOX, ProgressWriter, batch_script, write_progress_batch
from badges.domain.rules import Award, ProgressUpdate
from badges.metrics import exposition, process_registry
from tests.conftest import create_member

PROGRESS = [ProgressUpdate(badge_id="active-voter", name="Active voter", value=5, target=5)]
AWARDS = [
    Award(badge_id="active-voter", name="Active voter", instance="1", awarded_at=datetime(2026, 11, 25, tzinfo=UTC))
]


async def test_a_batch_is_written_once_with_its_outbox_rows_and_a_wake_up(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool, settings
) -> None:
    member = await create_member(engine, keys)
    async with await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True) as listener:
        await listener.execute(f"LISTEN {OUTBOX_CHANNEL}")
        await write_progress_batch(pool, member, 1, PROGRESS, AWARDS)
        notified = [n async for n in listener.notifies(timeout=5, stop_after=1)]
    assert len(notified) == 1 and notified[0].payload == ""

    # The same batch again (a retried activity): nothing changes.
    await write_progress_batch(pool, member, 1, PROGRESS, AWARDS)
    async with pool.connection() as connection:
        rows = await (
            await connection.execute("SELECT kind, payload FROM outbox WHERE user_id = %s ORDER BY id", (member,))
        ).fetchall()
        awards = await (
            await connection.execute("SELECT count(*) FROM awards WHERE user_id = %s", (member,))
        ).fetchone()
        progress = await (
            await connection.execute("SELECT value FROM badge_progress WHERE user_id = %s", (member,))
        ).fetchall()
    assert [kind for kind, _ in rows] == ["progress", "award"]
    assert rows[1][1] == {"badgeId": "active-voter", "name": "Active voter", "instance": "1",
                          "version": 1, "reward": None, "awardedAt": "2026-11-25T00:00:00Z"}  # fmt: skip
    assert awards == (1,) and progress == [(5,)]


async def test_a_later_batch_may_lower_a_value_and_a_stale_one_may_not(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    # A streak of 3 broken by a missed day falls to 1 in batch 8; batch 7 arriving late changes nothing.
    member = await create_member(engine, keys)
    streak = ProgressUpdate(badge_id="weekly-regular", name="Weekly regular", value=3, target=7)
    await write_progress_batch(pool, member, 7, [streak], [])
    await write_progress_batch(pool, member, 8, [streak.model_copy(update={"value": 1})], [])
    await write_progress_batch(pool, member, 7, [streak], [])
    await write_progress_batch(pool, member, 8, [streak.model_copy(update={"value": 1})], [])
    async with pool.connection() as connection:
        announced = await (
            await connection.execute("SELECT payload->>'value' FROM outbox WHERE user_id = %s ORDER BY id", (member,))
        ).fetchall()
        value = await (
            await connection.execute("SELECT value, batch_seq FROM badge_progress WHERE user_id = %s", (member,))
        ).fetchone()
    assert announced == [("3",), ("1",)]
    assert value == (1, 8)


async def test_a_retried_batch_holding_more_events_writes_and_announces_only_what_is_new(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    # A worker wrote [e1] (value 1), then died before its workflow task completed; the retried
    # task holds [e1, e2] (value 2, which earns the award). Nothing may be lost or repeated.
    member = await create_member(engine, keys)
    first = [ProgressUpdate(badge_id="active-voter", name="Active voter", value=4, target=5)]
    await write_progress_batch(pool, member, 1, first, [])
    await write_progress_batch(pool, member, 1, PROGRESS, AWARDS)
    # And a stale write (an earlier batch, late) never moves progress back.
    await write_progress_batch(pool, member, 0, first, [])
    async with pool.connection() as connection:
        rows = await (
            await connection.execute(
                "SELECT kind, payload->>'value' FROM outbox WHERE user_id = %s ORDER BY id", (member,)
            )
        ).fetchall()
        value = await (
            await connection.execute("SELECT value FROM badge_progress WHERE user_id = %s", (member,))
        ).fetchone()
    assert rows == [("progress", "4"), ("progress", "5"), ("award", None)]
    assert value == (5,)


async def test_an_award_already_held_is_not_announced_again(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    member = await create_member(engine, keys)
    await write_progress_batch(pool, member, 1, [], AWARDS)
    await write_progress_batch(pool, member, 1, [], AWARDS)  # e.g. a re-evaluation
    async with pool.connection() as connection:
        kinds = await (await connection.execute("SELECT kind FROM outbox WHERE user_id = %s", (member,))).fetchall()
    assert kinds == [("award",)]


async def test_a_tailer_reading_past_its_last_id_never_misses_a_row(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool, settings
) -> None:
    slow_member, fast_member = await create_member(engine, keys), await create_member(engine, keys)
    async with pool.connection() as connection:
        start = (await (await connection.execute("SELECT coalesce(max(id), 0) FROM outbox")).fetchone())[0]  # type: ignore[index]

    async def slow_writer() -> None:
        # The same script, committed late: its outbox id is taken first but becomes visible last
        # unless the outbox lock makes the other writer wait for it.
        connection = await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True)
        async with connection, connection.transaction():
            await connection.execute(batch_script(slow_member, 1, PROGRESS, []))
            await asyncio.sleep(0.5)

    async def fast_writer() -> None:
        await asyncio.sleep(0.1)
        await write_progress_batch(pool, fast_member, 1, PROGRESS, [])

    seen: list[int] = []

    async def tail() -> None:
        # What the hub does: read the rows past the last id seen. A row committed later with a
        # smaller id would be skipped for good; the count below would then exceed what was seen.
        last = start
        async with pool.connection() as connection:
            while len(seen) < 2:
                rows = await (
                    await connection.execute("SELECT id FROM outbox WHERE id > %s ORDER BY id", (last,))
                ).fetchall()
                seen.extend(row[0] for row in rows)
                last = seen[-1] if seen else last
                below = await (await connection.execute(
                    "SELECT count(*) FROM outbox WHERE id > %s AND id <= %s", (start, last)
                )).fetchone()  # fmt: skip
                assert below == (len(seen),), "a row was committed behind the tailer's position"
                await asyncio.sleep(0.01)

    await asyncio.wait_for(asyncio.gather(tail(), slow_writer(), fast_writer()), 10)
    assert seen == sorted(seen)


async def hold_outbox_lock(settings) -> psycopg.AsyncConnection:  # type: ignore[type-arg]
    """A connection inside a transaction that holds the outbox lock (the writer waits on it)."""
    connection = await psycopg.AsyncConnection.connect(settings.libpq_url)
    await connection.execute(LOCK_OUTBOX)
    return connection


async def outbox_transactions(pool: AsyncConnectionPool, members: list) -> dict:  # type: ignore[type-arg]
    """Each member's outbox rows' writing transaction (`xmin`): rows written together share one."""
    async with pool.connection() as connection:
        rows = await (
            await connection.execute(
                "SELECT user_id, xmin::text FROM outbox WHERE user_id = ANY(%s)", ([str(m) for m in members],)
            )
        ).fetchall()
    return {user_id: xmin for user_id, xmin in rows}


async def test_batches_that_arrive_during_a_write_share_the_next_transaction(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool, settings
) -> None:
    writer = ProgressWriter(pool)
    members = [await create_member(engine, keys) for _ in range(6)]
    lock = await hold_outbox_lock(settings)
    first = asyncio.create_task(writer.write(members[0], 1, PROGRESS, []))
    await asyncio.sleep(0.2)  # the first batch's transaction waits for the lock
    rest = [asyncio.create_task(writer.write(member, 1, PROGRESS, AWARDS)) for member in members[1:]]
    await asyncio.sleep(0.1)
    await lock.rollback()
    await lock.close()
    await asyncio.wait_for(asyncio.gather(first, *rest), 10)

    transactions = await outbox_transactions(pool, members)
    assert set(transactions) == set(members)
    # The first batch alone, then the five that queued behind it in one transaction.
    assert transactions[members[0]] != transactions[members[1]]
    assert len({transactions[member] for member in members[1:]}) == 1


async def test_a_batch_the_database_refuses_fails_alone_and_the_rest_of_its_group_is_written(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool, settings
) -> None:
    writer = ProgressWriter(pool)
    members = [await create_member(engine, keys) for _ in range(4)]
    # A badge id longer than its column: PostgreSQL refuses the row (a permanent DataError).
    refused = [ProgressUpdate(badge_id="x" * 100, name="Too long", value=1, target=3)]
    lock = await hold_outbox_lock(settings)
    first = asyncio.create_task(writer.write(members[0], 1, PROGRESS, []))
    await asyncio.sleep(0.2)
    good = asyncio.create_task(writer.write(members[1], 1, PROGRESS, []))
    bad = asyncio.create_task(writer.write(members[2], 1, refused, []))
    also_good = asyncio.create_task(writer.write(members[3], 1, [], AWARDS))
    await asyncio.sleep(0.1)
    await lock.rollback()
    await lock.close()
    outcomes = await asyncio.wait_for(asyncio.gather(first, good, bad, also_good, return_exceptions=True), 10)

    assert outcomes[0] is None and outcomes[1] is None and outcomes[3] is None
    assert isinstance(outcomes[2], psycopg.DataError)
    assert set(await outbox_transactions(pool, members)) == {members[0], members[1], members[3]}


async def test_a_batch_whose_caller_stopped_waiting_before_it_was_taken_is_not_written(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool, settings
) -> None:
    writer = ProgressWriter(pool)
    members = [await create_member(engine, keys) for _ in range(3)]
    lock = await hold_outbox_lock(settings)
    first = asyncio.create_task(writer.write(members[0], 1, PROGRESS, []))
    await asyncio.sleep(0.2)
    abandoned = asyncio.create_task(writer.write(members[1], 1, PROGRESS, []))
    kept = asyncio.create_task(writer.write(members[2], 1, PROGRESS, []))
    await asyncio.sleep(0.1)
    abandoned.cancel()  # as an activity that timed out
    await lock.rollback()
    await lock.close()
    await asyncio.wait_for(asyncio.gather(first, kept), 10)

    assert set(await outbox_transactions(pool, members)) == {members[0], members[2]}


async def test_the_workers_registry_reports_its_progress_writes(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool, settings
) -> None:
    writer = ProgressWriter(pool)
    members = [await create_member(engine, keys) for _ in range(3)]
    lock = await hold_outbox_lock(settings)
    writes = [asyncio.create_task(writer.write(member, 1, PROGRESS, [])) for member in members]
    await asyncio.sleep(0.2)
    await lock.rollback()
    await lock.close()
    await asyncio.wait_for(asyncio.gather(*writes), 10)

    lines = exposition(process_registry(keys, writer)).decode().splitlines()
    assert "badges_progress_write_seconds_count 3.0" in lines
    assert "badges_progress_transactions_total 1.0" in lines  # queued together, written together
    [total] = [line for line in lines if line.startswith("badges_progress_write_seconds_sum ")]
    assert float(total.split()[1]) >= 0.2 * 3  # every batch waited for the lock
