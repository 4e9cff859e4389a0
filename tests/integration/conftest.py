"""The running system for integration tests: real dev server, real PostgreSQL, real API and worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from badges.activities.webhooks import make_webhook_client
from badges.config import Settings
from badges.db.keys import KeyStore
from badges.workers.main import build_worker
from tests.support import running_api


@pytest.fixture(scope="session")
def system_settings(settings: Settings, dev_server: WorkflowEnvironment) -> Settings:
    target = dev_server.client.service_client.config.target_host
    return settings.model_copy(update={"temporal_address": target})


@pytest.fixture(scope="session")
async def worker(
    system_settings: Settings,
    dev_server: WorkflowEnvironment,
    pool: AsyncConnectionPool,
    engine: AsyncEngine,
    keys: KeyStore,
) -> AsyncIterator[None]:
    async with (
        make_webhook_client() as http,
        build_worker(dev_server.client, system_settings, pool, engine=engine, keys=keys, http=http),
    ):
        yield


@pytest.fixture(scope="session")
async def api_url(system_settings: Settings) -> AsyncIterator[str]:
    async with running_api(system_settings) as url:
        yield url


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        yield http
