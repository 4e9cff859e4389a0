"""Event receipts against real PostgreSQL: claiming an id (within the member's rate limit, in one
statement), and marking claims handed over in batches."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.db import receipts
from badges.db.keys import KeyStore
from badges.db.rate_limits import Take
from badges.db.receipts import SignalledMarks, claim_event
from tests.conftest import create_member
from tests.support import eventually, free_port


def counting_statements(marks: SignalledMarks) -> list[int]:
    """The size of each batch `marks` writes (one UPDATE each), appended as it goes out."""
    statements: list[int] = []
    execute = marks._execute

    async def counted(batch: set[tuple[object, str]]) -> None:
        statements.append(len(batch))
        await execute(batch)  # type: ignore[arg-type]

    marks._execute = counted  # type: ignore[method-assign]
    return statements


async def test_marks_count_at_once_and_reach_the_database_many_to_a_statement(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    member = await create_member(engine, keys)
    ids = [f"e{n}" for n in range(50)]
    for event_id in ids:
        assert (await claim_event(pool, member, event_id)).new
    marks = SignalledMarks(pool)
    statements = counting_statements(marks)
    for event_id in ids:
        marks.add(member, event_id)
    # Counted in this process at once, written yet or not: a quick retry is a duplicate.
    assert all([(await marks.claim(member, event_id)).already_signalled for event_id in ids])

    async def all_written() -> bool:
        return not any((member, event_id) in marks for event_id in ids)

    await eventually(all_written)  # by the writer in the background: nobody flushed
    # All fifty in one statement: they were added while none was running.
    assert statements == [50]
    # Written: another process (no memory of these marks) sees every id as handed over.
    for event_id in ids:
        claim = await claim_event(pool, member, event_id)
        assert not claim.new and claim.already_signalled
    # An unclaimed id is still new; a claimed but unmarked one is not signalled.
    assert (await claim_event(pool, member, "other")).new
    assert not (await claim_event(pool, member, "other")).already_signalled
    await marks.close()


async def test_marks_waiting_at_shutdown_are_written(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    member = await create_member(engine, keys)
    await claim_event(pool, member, "last")
    marks = SignalledMarks(pool)
    marks.add(member, "last")
    await marks.close()
    assert (await claim_event(pool, member, "last")).already_signalled


@asynccontextmanager
async def unwritable_mark(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool, event_id: str
) -> AsyncIterator[tuple[uuid.UUID, SignalledMarks]]:
    """A claimed receipt, its mark added to marks on a pool that cannot connect (nothing listens
    on a free port)."""
    member = await create_member(engine, keys)
    await claim_event(pool, member, event_id)
    broken = AsyncConnectionPool(f"postgresql://nobody@127.0.0.1:{free_port()}/none", open=False, timeout=0.5)
    await broken.open(wait=False)
    marks = SignalledMarks(broken)
    marks.add(member, event_id)
    try:
        yield member, marks
    finally:
        await marks.close()
        await broken.close()


async def test_a_failed_write_keeps_the_marks_and_retries_until_it_lands(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    async with unwritable_mark(engine, keys, pool, "kept") as (member, marks):
        await asyncio.sleep(1.5)  # the write has failed at least once
        assert (member, "kept") in marks
        assert not (await claim_event(pool, member, "kept")).already_signalled
        marks._pool = pool  # the database is back

        async def landed() -> bool:
            return (await claim_event(pool, member, "kept")).already_signalled

        await eventually(landed)
        assert (member, "kept") not in marks


async def test_marks_that_cannot_be_written_at_shutdown_are_given_up(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    async with unwritable_mark(engine, keys, pool, "given-up") as (member, marks):
        await marks.close()  # gives up (logged), leaving the receipt unmarked for a retry to hand over again
        assert not (await claim_event(pool, member, "given-up")).already_signalled
        marks.add(member, "late")  # after close: nothing starts writing against the closed pool
        assert marks._writer is None or marks._writer.done()


async def test_a_mark_written_while_a_repeat_is_claimed_still_counts(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = await create_member(engine, keys)
    await claim_event(pool, member, "raced")
    marks = SignalledMarks(pool)
    marks.add(member, "raced")

    async def claim_then_mark_written(*args: object) -> receipts.Claim:
        # The repeat's snapshot is taken before the mark is written; by the time the claim
        # returns, the mark has left the pending set.
        claim = await claim_event(*args)  # type: ignore[arg-type]
        await marks.flush()
        return claim

    monkeypatch.setattr(receipts, "claim_event", claim_then_mark_written)
    repeat = await marks.claim(member, "raced")
    assert not repeat.new and repeat.already_signalled
    await marks.close()


async def test_a_claim_within_a_rate_limit_is_made_only_when_the_hit_is_allowed(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    member = await create_member(engine, keys)
    bucket = f"test-claim/{uuid.uuid4()}"
    expires = datetime.now(UTC) + timedelta(minutes=2)
    hit = Take(bucket, 600, 60, 0.0, 2, expires)
    first = await claim_event(pool, member, "a", hit)
    assert first.new and first.count is not None and first.count.allowed and first.count.hits == 1
    repeat = await claim_event(pool, member, "a", hit)  # a repeat counts against the limit too
    assert not repeat.new and repeat.count is not None and repeat.count.hits == 2
    refused = await claim_event(pool, member, "b", hit)
    assert refused.count is not None and not refused.count.allowed and refused.count.hits == 2
    assert not refused.new
    # Nothing was claimed for the refused id: once the limit allows it, it is new.
    later = await claim_event(pool, member, "b", Take(bucket, 660, 60, 0.0, 2, expires))
    assert later.new and later.count is not None and later.count.allowed and later.count.previous_hits == 2


async def test_concurrent_claims_within_a_rate_limit_claim_exactly_the_amount(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    member = await create_member(engine, keys)
    hit = Take(f"test-claim-race/{uuid.uuid4()}", 600, 60, 0.0, 7, datetime.now(UTC) + timedelta(minutes=2))
    claims = await asyncio.gather(*(claim_event(pool, member, f"e{n}", hit) for n in range(30)))
    assert sum(claim.new for claim in claims) == 7
    assert all(claim.new == (claim.count is not None and claim.count.allowed) for claim in claims)
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT count(*) FROM event_receipts WHERE user_id = %s", (member,))
        assert await cursor.fetchone() == (7,)


async def test_marks_added_one_at_a_time_within_the_linger_share_one_statement(
    engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    # Events arrive one by one, not in a burst: each mark was its own UPDATE (and commit) before.
    member = await create_member(engine, keys)
    ids = [f"s{n}" for n in range(10)]
    for event_id in ids:
        await claim_event(pool, member, event_id)
    marks = SignalledMarks(pool, linger=2.0)
    statements = counting_statements(marks)
    for event_id in ids:
        marks.add(member, event_id)
        await asyncio.sleep(0.01)  # the writer runs in between

    async def all_written() -> bool:
        return not any((member, event_id) in marks for event_id in ids)

    await eventually(all_written)
    assert statements == [10]
    await marks.close()
