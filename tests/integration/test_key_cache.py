"""The data-key cache: bounded by size and by age, counting its hits and misses, and forgetting
an erased member's keys at once. A clock of the test's own, so no test waits."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.config import Settings
from badges.db.keys import DataKey, KeyStore, KeyUnavailableError, MasterKeys
from badges.metrics import exposition, process_registry
from tests.conftest import create_member
from tests.support import statements_on


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def members_with_keys(engine: AsyncEngine, keys: KeyStore, count: int) -> list[tuple[uuid.UUID, str]]:
    members = [await create_member(engine, keys) for _ in range(count)]
    return [(member, (await keys.live_key(str(member))).key_id) for member in members]


def store(engine: AsyncEngine, settings: Settings, clock: Clock, **bounds: float) -> KeyStore:
    return KeyStore(engine, MasterKeys(settings.parsed_master_keys), clock=clock, **bounds)  # type: ignore[arg-type]


async def reads(engine: AsyncEngine, keys: KeyStore, key_id: str) -> int:
    """How many times looking the key up reads the database (0: from memory)."""
    with statements_on(engine, "data_keys") as statements:
        await keys.key_by_id(key_id)
    return len(statements)


async def test_the_least_recently_used_keys_go_past_the_size_bound(
    engine: AsyncEngine, keys: KeyStore, settings: Settings
) -> None:
    (_, first), (_, second), (_, third) = await members_with_keys(engine, keys, 3)
    cache = store(engine, settings, Clock(), max_entries=2)
    for key_id in (first, second):
        assert await reads(engine, cache, key_id) == 1
    assert await reads(engine, cache, first) == 0  # now the most recently used
    assert await reads(engine, cache, third) == 1  # evicts `second`, the least recently used

    assert cache.cache_stats().entries == 2
    assert await reads(engine, cache, first) == 0
    assert await reads(engine, cache, second) == 1
    stats = cache.cache_stats()
    assert (stats.hits, stats.misses, stats.entries, stats.max_entries) == (2, 4, 2, 2)


async def test_a_key_is_read_again_once_it_is_older_than_the_age_bound(
    engine: AsyncEngine, keys: KeyStore, settings: Settings
) -> None:
    [(member, key_id)] = await members_with_keys(engine, keys, 1)
    clock = Clock()
    cache = store(engine, settings, clock, max_age_seconds=60)
    assert await reads(engine, cache, key_id) == 1
    clock.now += 59
    assert await reads(engine, cache, key_id) == 0
    with statements_on(engine, "data_keys") as statements:
        await cache.live_key(str(member))
    assert statements == []
    clock.now += 2  # 61 s after it was read: however often it was used meanwhile
    assert await reads(engine, cache, key_id) == 1
    with statements_on(engine, "data_keys") as statements:
        await cache.live_key(str(member))
    assert statements == []  # read afresh just now
    assert (cache.cache_stats().hits, cache.cache_stats().misses) == (3, 2)

    # Expired keys leave memory too, not just use: with many members each seen once.
    many = store(engine, settings, clock, max_age_seconds=60)
    for _, other in await members_with_keys(engine, keys, 3):
        await many.key_by_id(other)
    clock.now += 61
    await many.key_by_id(key_id)  # any write drops what expired
    assert many.cache_stats().entries == 1


async def test_an_erased_members_key_is_forgotten_at_once_whatever_the_bounds(
    engine: AsyncEngine, keys: KeyStore, settings: Settings
) -> None:
    (member, key_id), (_, other) = await members_with_keys(engine, keys, 2)
    cache = store(engine, settings, Clock(), max_entries=10, max_age_seconds=3600)
    await cache.key_by_id(key_id)
    await cache.live_key(str(member))
    await cache.key_by_id(other)
    async with engine.begin() as connection:
        await connection.execute(
            update(DataKey).where(DataKey.owner == str(member)).values(wrapped_key=None, destroyed_at=func.now())
        )

    cache.forget(str(member))  # the erasure notice

    with pytest.raises(KeyUnavailableError):
        await cache.key_by_id(key_id)
    with pytest.raises(KeyUnavailableError):
        await cache.live_key(str(member))
    assert await reads(engine, cache, other) == 0  # everyone else's stay


async def test_the_api_exposes_its_key_cache_to_prometheus(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    for name in ("badges_key_cache_hits_total", "badges_key_cache_misses_total", "badges_key_cache_entries"):
        assert any(line.startswith(f"{name} ") for line in lines), name
    assert "badges_key_cache_max_entries 50000.0" in lines


async def test_the_workers_registry_counts_what_its_store_did(
    engine: AsyncEngine, keys: KeyStore, settings: Settings
) -> None:
    [(_, key_id)] = await members_with_keys(engine, keys, 1)
    cache = store(engine, settings, Clock())
    await cache.key_by_id(key_id)
    await cache.key_by_id(key_id)
    text = exposition(process_registry(cache)).decode()
    assert "badges_key_cache_hits_total 1.0" in text.splitlines()
    assert "badges_key_cache_misses_total 1.0" in text.splitlines()
