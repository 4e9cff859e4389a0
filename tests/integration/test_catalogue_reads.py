"""The API's catalogue cache against real PostgreSQL: while one task reads the catalogue, others
are answered from the last read instead of queueing behind it, a failed read included."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import badges.api.catalogue as catalogue_module
from badges.api.catalogue import CatalogueService


async def test_a_slow_or_failing_read_holds_up_its_own_caller_only(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = CatalogueService(engine)
    await service.seed("")
    revision, badges = await service.current()
    assert badges

    gate, reading = asyncio.Event(), asyncio.Event()
    real = catalogue_module.current_revision

    async def slow_then_failing(engine: AsyncEngine) -> Any:
        reading.set()
        await gate.wait()
        raise OSError("the pool had no connection to give")

    monkeypatch.setattr(catalogue_module, "CACHE_SECONDS", 0.0)  # every call reads again
    monkeypatch.setattr(catalogue_module, "current_revision", slow_then_failing)
    first = asyncio.create_task(service.current())
    await reading.wait()
    others = [asyncio.create_task(service.current()) for _ in range(5)]
    for _ in range(5):
        await asyncio.sleep(0)
    # Answered from the last read while the first is still waiting (before: all five queued).
    assert all(task.done() for task in others)
    assert all(task.result() == (revision, badges) for task in others)
    gate.set()
    with pytest.raises(OSError):
        await first
    # The next read is a real one again.
    monkeypatch.setattr(catalogue_module, "current_revision", real)
    assert await service.current() == (revision, badges)
