"""The member directory against real PostgreSQL: what resolving a member brings along."""

from __future__ import annotations

import uuid

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.api.members import MemberDirectory
from badges.db.keys import KeyStore

PEPPER = "test-pepper-test-pepper"


async def test_resolving_a_member_brings_their_time_zone_so_their_first_event_reads_nothing(
    engine: AsyncEngine, keys: KeyStore
) -> None:
    subject = f"member-{uuid.uuid4()}@example.com"
    member = await MemberDirectory(engine, keys, PEPPER).resolve(subject)
    await MemberDirectory(engine, keys, PEPPER).set_timezone(member, "Europe/London")

    # Another process: it resolves the member (their stream opens), then their first event
    # needs their time zone.
    directory = MemberDirectory(engine, keys, PEPPER)
    assert await directory.resolve(subject) == member
    statements: list[str] = []

    def listener(connection: object, cursor: object, statement: str, *rest: object) -> None:
        if "members" in statement:
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", listener)
    try:
        assert await directory.timezone(member) == "Europe/London"
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", listener)
    assert statements == []


async def test_a_new_member_is_on_utc_until_they_say_otherwise(engine: AsyncEngine, keys: KeyStore) -> None:
    directory = MemberDirectory(engine, keys, PEPPER)
    member = await directory.resolve(f"member-{uuid.uuid4()}")
    assert await directory.timezone(member) == "UTC"
    assert await MemberDirectory(engine, keys, PEPPER).timezone(member) == "UTC"  # as stored
