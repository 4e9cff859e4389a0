"""The member directory against real PostgreSQL: what resolving a member brings along."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from badges.api.members import MemberDirectory
from badges.config import Settings
from badges.db.keys import KeyStore, MasterKeys
from tests.support import statements_on

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
    with statements_on(engine, "members") as statements:
        assert await directory.timezone(member) == "Europe/London"
    assert statements == []


async def test_a_new_members_key_is_at_hand_in_the_process_that_made_it(
    engine: AsyncEngine, keys: KeyStore, settings: Settings
) -> None:
    process_keys = KeyStore(engine, MasterKeys(settings.parsed_master_keys))
    member = await MemberDirectory(engine, process_keys, PEPPER).resolve(f"member-{uuid.uuid4()}")
    with statements_on(engine, "data_keys") as statements:
        created = await process_keys.live_key(str(member))
    assert statements == []
    # The very key stored for them: another process reads the same one.
    stored = await KeyStore(engine, MasterKeys(settings.parsed_master_keys)).live_key(str(member))
    assert stored.key_id == created.key_id
    assert stored.decrypt(created.encrypt(b"sealed")) == b"sealed"


async def test_a_new_member_is_on_utc_until_they_say_otherwise(engine: AsyncEngine, keys: KeyStore) -> None:
    directory = MemberDirectory(engine, keys, PEPPER)
    member = await directory.resolve(f"member-{uuid.uuid4()}")
    assert await directory.timezone(member) == "UTC"
    assert await MemberDirectory(engine, keys, PEPPER).timezone(member) == "UTC"  # as stored
