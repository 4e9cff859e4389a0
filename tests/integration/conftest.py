"""The running system for integration tests: real dev server, real PostgreSQL, real API and worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from badges.activities.webhooks import make_webhook_client
from badges.banking.sandbox import SandboxSettings, create_sandbox_app
from badges.banking.sandbox.truelayer import create_truelayer_sandbox
from badges.banking.sandbox.yodlee import create_yodlee_sandbox
from badges.config import Settings
from badges.db.keys import KeyStore
from badges.workers.main import build_workers
from tests.sandbox.conftest import CLIENT_ID, SECRET, Sandbox, plaid_api
from tests.support import EventSystem, free_port, running_api, serving


@pytest.fixture(scope="session")
async def sandbox_bank() -> AsyncIterator[Sandbox]:
    """The sandbox bank (Plaid's API), on the real clock, for the whole session."""
    async with serving(create_sandbox_app(SandboxSettings())) as url:
        headers = {"PLAID-CLIENT-ID": CLIENT_ID, "PLAID-SECRET": SECRET}
        async with httpx.AsyncClient(base_url=url, headers=headers) as http:
            yield Sandbox(url, plaid_api(url), http)


@pytest.fixture(scope="session")
async def truelayer_bank() -> AsyncIterator[str]:
    """The local TrueLayer (auth server and Data API v1 in one)."""
    async with serving(create_truelayer_sandbox()) as url:
        yield url


@pytest.fixture(scope="session")
async def yodlee_bank() -> AsyncIterator[str]:
    """The local Yodlee (API v1.1 and the FastLink stand-in page in one)."""
    async with serving(create_yodlee_sandbox()) as url:
        yield url


@pytest.fixture(scope="session")
def api_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def system_settings(
    settings: Settings,
    dev_server: WorkflowEnvironment,
    sandbox_bank: Sandbox,
    truelayer_bank: str,
    yodlee_bank: str,
    api_port: int,
) -> Settings:
    target = dev_server.client.service_client.config.target_host
    return settings.model_copy(
        update={
            "temporal_address": target,
            "plaid_host": sandbox_bank.url,
            "truelayer_auth_url": truelayer_bank,
            "truelayer_api_url": truelayer_bank,
            "yodlee_api_url": yodlee_bank,
            "yodlee_fastlink_url": f"{yodlee_bank}/fastlink",
            # Where the sandbox sends its webhooks.
            "public_url": f"http://127.0.0.1:{api_port}",
        }
    )


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
        build_workers(dev_server.client, system_settings, pool, engine=engine, keys=keys, http=http),
    ):
        yield


@pytest.fixture(scope="session")
async def api_url(system_settings: Settings, api_port: int) -> AsyncIterator[str]:
    async with running_api(system_settings, api_port) as url:
        yield url


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        yield http


@pytest.fixture
async def event_system(client: httpx.AsyncClient) -> EventSystem:
    """Posts attendance and votes signed, as the event system does (a member's token may not)."""
    return await EventSystem.register(client)
