"""The system's own processes for tests and benchmarks: the Temporal dev server on a SQLite file,
workers, API processes and the sandbox bank, each a subprocess on a port of its own, so a test can
kill or restart one while the others run (tests/chaos/, bench/stack.py)."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from badges.cli.api import WORKER_START_SECONDS
from badges.cli.dev import TEMPORAL_SQLITE_PRAGMAS, temporal_environment, wait_for_port
from badges.config import Settings

Process = subprocess.Popen[bytes]
Log = IO[bytes] | None


def system_environment(database_url: str, temporal_address: str) -> dict[str, str]:
    """This process's environment plus what every process of one system shares: the database,
    Temporal, and secrets made up for this run (dev tokens on)."""
    return {
        **os.environ,
        "BADGES_ENV": "dev",
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "BADGES_JWT_SECRET": secrets.token_urlsafe(48),
        "BADGES_MASTER_KEYS": "run:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "BADGES_IDENTITY_PEPPER": secrets.token_urlsafe(24),
    }


def settings_environment(settings: Settings) -> dict[str, str]:
    """This process's environment with `settings` in it, as a child process reads them back."""
    return {**os.environ, **{name: str(value) for name, value in settings.model_dump(by_alias=True).items()}}


def start_temporal(
    port: int, db_file: Path, log: Log = None, *, metrics_port: int | None = None, extra: Sequence[str] = ()
) -> Process:
    """The dev server keeping its state in `db_file`: started again on the same file, it has every
    workflow it had. Answers once the port is open."""
    binary = shutil.which("temporal", path=str(Path(sys.executable).parent)) or "temporal"
    metrics = ["--metrics-port", str(metrics_port)] if metrics_port else []
    process = subprocess.Popen(
        [
            binary, "server", "start-dev", "--headless", "--port", str(port), *metrics,
            "--db-filename", str(db_file), "--log-level", "error", *TEMPORAL_SQLITE_PRAGMAS, *extra,
        ],
        env=temporal_environment(), stdout=log, stderr=log,
    )  # fmt: skip
    wait_for_port("127.0.0.1", port, 60, process)
    return process


def start_worker(settings: Settings, log: Log = None) -> Process:
    """`python -m badges.workers.main` with `settings` (it polls the queues `worker_queues` names)."""
    return subprocess.Popen(
        [sys.executable, "-m", "badges.workers.main"], env=settings_environment(settings), stdout=log, stderr=log
    )


def start_api(env: Mapping[str, str], port: int, log: Log = None, *, processes: int = 1, ws_max_size: int) -> Process:
    """The API under uvicorn (`processes` uvicorn workers on the one port); answers once it listens."""
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--factory", "badges.api.app:app_from_environment",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--workers", str(processes), "--no-access-log", "--ws-max-size", str(ws_max_size),
            "--ws-per-message-deflate", "false",
            # As `python -m badges.cli.api` runs it: the requests in flight when a drain ends get
            # this long (a rolling restart under load has some that wait on Temporal for seconds).
            "--timeout-graceful-shutdown", env.get("BADGES_API_SHUTDOWN_SECONDS", "10"),
            "--timeout-worker-healthcheck", str(WORKER_START_SECONDS),
            "--timeout-keep-alive", env.get("BADGES_API_KEEP_ALIVE_SECONDS", "75"),
        ],
        env=dict(env), stdout=log, stderr=log,
    )  # fmt: skip
    wait_for_port("127.0.0.1", port, 60, process)
    return process


def start_plaid_sandbox(env: Mapping[str, str], port: int, log: Log = None) -> Process:
    """The sandbox bank speaking Plaid's API (its state is in memory: a restart forgets every item)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "badges.banking.sandbox"],
        env={**env, "BADGES_SANDBOX_PORT": str(port)},
        stdout=log,
        stderr=log,
    )
    wait_for_port("127.0.0.1", port, 60, process)
    return process


def stop(process: Process, how: signal.Signals = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal `process` (SIGKILL: it dies mid-work, as a crash) and wait for it to be gone."""
    if process.poll() is None:
        process.send_signal(how)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
