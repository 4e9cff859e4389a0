"""The member directory against real PostgreSQL: what resolving a member brings along."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.api.members import MemberDirectory
from badges.config import Settings
from badges.db.engine import make_engine
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


# What this process may have open in PostgreSQL, as `max_connections` shared by several API
# processes and workers leaves each of them.
CONNECTIONS_LEFT = 5


@pytest.fixture
def limited_database_url(database_url: str, settings: Settings) -> Iterator[str]:
    """The test database through a role that may hold only CONNECTIONS_LEFT connections at once
    (PostgreSQL refuses the next one, as it does past `max_connections`)."""
    role = f"badges_limited_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT {CONNECTIONS_LEFT}')
        admin.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        admin.execute(f'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO "{role}"')
    try:
        yield make_url(settings.database_url).set(username=role, password=None).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')


async def test_many_members_seen_first_at_once_wait_for_the_database_instead_of_failing(
    limited_database_url: str, settings: Settings
) -> None:
    """Hundreds of streams opening together (a ramp, a reconnect storm after a restart): each
    needs its member looked up, or created with their key. An API process's pool may open 20
    connections; the lookups beyond what the process has left wait for one instead of being
    refused with 503 (a WebSocket's 1013) "database unavailable"."""
    engine = make_engine(limited_database_url)
    try:
        directory = MemberDirectory(engine, KeyStore(engine, MasterKeys(settings.parsed_master_keys)), PEPPER)
        subjects = [f"first-sight-{n}-{uuid.uuid4()}" for n in range(100)]
        members = await asyncio.gather(*(directory.resolve(subject) for subject in subjects))
        assert len(set(members)) == len(subjects)
    finally:
        await engine.dispose()
