"""The running system for integration tests: real dev server, real PostgreSQL, real API and worker
(the system's fixtures are in tests/conftest.py, shared with the browser tests: one per session)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support import EventSystem


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        yield http


@pytest.fixture
async def event_system(client: httpx.AsyncClient) -> EventSystem:
    """Posts attendance and votes signed, as the event system does (a member's token may not)."""
    return await EventSystem.register(client)
