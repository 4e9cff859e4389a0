"""What a rolling restart needs of an API process: it is connected to Temporal before it serves
(the old process stops accepting as soon as the new one does, so its first requests must not all
wait for that connection), and it stays within its share of PostgreSQL's connections, so many
requests at once wait for a pooled connection instead of being refused by the server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from temporalio.testing import WorkflowEnvironment

from badges.api.app import create_app
from badges.api.auth import issue_token
from badges.db.migrate import upgrade
from tests.conftest import make_settings
from tests.support import real_time_event, serving

REQUESTS = 40  # at once: several times what the pools below hold


@asynccontextmanager
async def counting_proxy(target: str) -> AsyncIterator[tuple[str, list[float]]]:
    """A TCP proxy to `target` (`host:port`); yields its address and the connections it accepted."""
    host, port = target.rsplit(":", 1)
    accepted: list[float] = []
    handlers: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(asyncio.get_running_loop().time())
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True)

    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}", accepted
    finally:
        server.close()
        for task in handlers:
            task.cancel()


async def test_an_api_process_is_connected_to_temporal_before_it_serves(
    database_url: str, dev_server: WorkflowEnvironment
) -> None:
    async with counting_proxy(dev_server.client.service_client.config.target_host) as (address, accepted):
        settings = make_settings(database_url, address)
        async with serving(create_app(settings)) as url:
            # Listening, and nothing asked of it yet: the connection was made while it started.
            assert accepted, "the API process serves before it has connected to Temporal"
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text


def _as_role(admin_url: str, role: str) -> str:
    """`admin_url` for `role`, on the database of the same name."""
    parts = urlsplit(admin_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{role}@{host}", f"/{role}", parts.query, ""))


@pytest.fixture
def limited_database(admin_url: str) -> Iterator[tuple[str, int]]:
    """A migrated database of its own role, which PostgreSQL lets hold at most as many connections
    as one process's budget (no more than `max_connections` would, for a process of a service
    sized to fit): its libpq URL and the limit. Not a superuser, whom no limit binds."""
    role = f"budget_{uuid.uuid4().hex[:10]}"
    pool_size, engine_pool_size = 2, 2
    limit = pool_size + engine_pool_size + 1
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER CONNECTION LIMIT {limit}')
        admin.execute(f'CREATE DATABASE "{role}" OWNER "{role}"')
    url = _as_role(admin_url, role)
    try:
        upgrade(url.replace("postgresql://", "postgresql+psycopg://", 1))
        yield url, limit
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


async def test_many_requests_at_once_wait_for_the_pools_within_the_connection_budget(
    limited_database: tuple[str, int], dev_server: WorkflowEnvironment
) -> None:
    url, limit = limited_database
    settings = make_settings(
        url,
        dev_server.client.service_client.config.target_host,
        BADGES_DB_POOL_SIZE="2",
        BADGES_DB_ENGINE_POOL_SIZE="2",
    )
    assert settings.db_connections_per_process == limit
    subs = [f"budget-{uuid.uuid4()}" for _ in range(REQUESTS)]
    headers = [{"Authorization": f"Bearer {issue_token(settings, sub, ['user'])}"} for sub in subs]
    limits = httpx.Limits(max_connections=REQUESTS)
    async with (
        serving(create_app(settings)) as api,
        httpx.AsyncClient(base_url=api, timeout=60, limits=limits) as client,
    ):
        # Each member's first sight (a member row and a data key: the engine) and their workflow
        # started ahead (Temporal), then an event each (the psycopg pool: throttle and receipt).
        first = await asyncio.gather(*(client.get("/v1/me", headers=h) for h in headers))
        assert [r.status_code for r in first] == [200] * REQUESTS, {r.status_code: r.text for r in first}
        events = await asyncio.gather(
            *(
                client.post("/v1/events", json=real_time_event("e-1", sub, "tool_usage", calculatorId="c1"), headers=h)
                for sub, h in zip(subs, headers, strict=True)
            )
        )
        assert [r.status_code for r in events] == [202] * REQUESTS, {r.status_code: r.text for r in events}
