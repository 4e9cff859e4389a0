"""Review items against real PostgreSQL: held events are rows of their own, sealed with the member's
key, appended once each and handed back in bounded pages; a batch the database refuses leaves
nothing behind; events held before migration 0009 are moved, in order, and still handed back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from alembic import command
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.db.keys import KeyStore
from badges.db.migrate import alembic_config, upgrade
from badges.db.progress import write_member_batch
from badges.db.reviews import HeldEvents, held_events_page, review_item
from badges.domain.events import BadgeEvent
from badges.domain.rules import ProgressUpdate
from tests.conftest import _admin_url, create_member

AT = datetime(2026, 12, 1, 9, tzinfo=UTC)


def held_event(n: int, payload: str = "") -> BadgeEvent:
    return BadgeEvent(id=f"e-{n}", type="attendance", timestamp=AT, event_data={"note": payload})


async def sealed(keys: KeyStore, member: uuid.UUID, events: list[BadgeEvent]) -> list[tuple[str, bytes]]:
    return [(event.id, await keys.seal(str(member), event.model_dump_json().encode())) for event in events]


async def hold(
    pool: AsyncConnectionPool, keys: KeyStore, member: uuid.UUID, review_id: str, events: list[BadgeEvent]
) -> None:
    item = HeldEvents(review_id, "attendance", "burst", await sealed(keys, member, events))
    await write_member_batch(pool, member, 1, [], [], held=[item])


async def test_held_events_are_sealed_appended_once_and_paged_in_order(
    engine: AsyncEngine, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    member = await create_member(engine, keys)
    review_id = str(uuid.uuid4())
    events = [held_event(n) for n in range(7)]
    await hold(pool, keys, member, review_id, events[:4])
    await hold(pool, keys, member, review_id, events[2:])  # a retried batch overlaps: nothing twice
    item = await review_item(engine, review_id)
    assert item is not None and item.event_count == 7 and item.event_ids == [e.id for e in events]
    async with pool.connection() as connection:
        query = "SELECT sealed FROM review_events WHERE review_id = %s"
        stored = await (await connection.execute(query, (review_id,))).fetchall()
    plain = [event.model_dump_json().encode() for event in events]
    # Sealed, not plain: no stored row holds an event's JSON or its type (a two-byte probe such as the
    # id prefix turns up in random ciphertext by chance).
    assert all(b'"attendance"' not in bytes(row[0]) and bytes(row[0]) not in plain for row in stored)

    pages, after = [], 0
    while after is not None:
        page = await held_events_page(pool, keys, member, review_id, after, max_events=3, max_bytes=1 << 20)
        pages.append([BadgeEvent.model_validate_json(text).id for text in page.events])
        after = page.next_after
    assert pages == [["e-0", "e-1", "e-2"], ["e-3", "e-4", "e-5"], ["e-6"]]
    # Another member's item is not theirs to load.
    other = await held_events_page(pool, keys, uuid.uuid4(), review_id, 0, max_events=3, max_bytes=1 << 20)
    assert other.events == [] and other.next_after is None


async def test_a_page_stops_at_its_byte_bound_but_always_holds_one_event(
    engine: AsyncEngine, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    member = await create_member(engine, keys)
    review_id = str(uuid.uuid4())
    await hold(pool, keys, member, review_id, [held_event(n, "x" * 1000) for n in range(5)])
    sizes, after = [], 0
    while after is not None:
        page = await held_events_page(pool, keys, member, review_id, after, max_events=100, max_bytes=2500)
        sizes.append(len(page.events))
        assert sum(len(text.encode()) for text in page.events) <= 2500 or len(page.events) == 1
        after = page.next_after
    assert sizes == [2, 2, 1]
    tiny = await held_events_page(pool, keys, member, review_id, 0, max_events=100, max_bytes=10)
    assert len(tiny.events) == 1 and tiny.next_after is not None


async def test_a_batch_the_database_refuses_leaves_nothing_behind(
    engine: AsyncEngine, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    member = await create_member(engine, keys)
    review_id = str(uuid.uuid4())
    progress = ProgressUpdate(badge_id="regular-attendee", name="Regular", value=3, target=5)
    bad = HeldEvents(review_id, "attendance", "burst", [("bad\x00id", b"k:sealed")])
    with pytest.raises(psycopg.DataError):
        await write_member_batch(pool, member, 1, [progress], [], held=[bad])
    async with pool.connection() as connection:
        counts = await (
            await connection.execute(
                "SELECT (SELECT count(*) FROM badge_progress WHERE user_id = %(m)s),"
                "       (SELECT count(*) FROM outbox WHERE user_id = %(m)s),"
                "       (SELECT count(*) FROM review_queue WHERE user_id = %(m)s)",
                {"m": member},
            )
        ).fetchone()
    assert counts == (0, 0, 0)


async def test_events_held_before_migration_0009_move_to_their_own_rows_in_order(keys: KeyStore) -> None:
    for admin_url in _admin_url():
        name = f"badges_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        try:
            sqlalchemy_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
            upgrade(sqlalchemy_url, "0008")
            member = uuid.uuid4()
            legacy = [held_event(n).model_dump(mode="json") for n in range(3)]
            with psycopg.connect(url, autocommit=True) as connection:
                digest = member.bytes * 2
                connection.execute("INSERT INTO members (id, subject_digest) VALUES (%s, %s)", (member, digest))
                connection.execute(
                    "INSERT INTO review_queue (review_id, user_id, event_type, reason, event_count, event_ids, events)"
                    " VALUES ('old', %s, 'attendance', 'burst', 3, %s, %s)",
                    (member, Jsonb([event["id"] for event in legacy]), Jsonb(legacy)),
                )
            upgrade(sqlalchemy_url)
            async with AsyncConnectionPool(url, open=False) as pool:
                page = await held_events_page(pool, keys, member, "old", 0, max_events=10, max_bytes=1 << 20)
            assert [BadgeEvent.model_validate_json(text) for text in page.events] == [
                BadgeEvent.model_validate(event) for event in legacy
            ]
            assert page.next_after is None
            # And back: the events held before 0009 return to their item.
            command.downgrade(alembic_config(sqlalchemy_url), "0008")
            with psycopg.connect(url) as connection:
                row = connection.execute("SELECT events FROM review_queue WHERE review_id = 'old'").fetchone()
            assert row is not None and row[0] == legacy
        finally:
            with psycopg.connect(admin_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
