"""`python -m badges.cli.api`: the API as the image runs it. uvicorn with the settings' bound on one
WebSocket message (`Settings.ws_max_size`, a little above the app's own 64 KiB check; uvicorn's
default is 16 MiB buffered per message), no per-message compression, and server logs with every
`access_token` value redacted (`badges/api/logs.py`).

Where it listens: `--host`/`--port` or `BADGES_API_HOST` (127.0.0.1) and `BADGES_API_PORT` (8000);
`--workers`/`BADGES_API_WORKERS` (1). Restarts: SIGTERM drains and stops a process gracefully
(`badges/api/drain.py`); with several workers, SIGHUP to the parent replaces them one at a time,
each new one serving before the old one drains. Behind a proxy or load balancer, set uvicorn's
`FORWARDED_ALLOW_IPS` to its address, so limits per source address see the client's.

With more than one worker process, `GET /metrics` aggregates them all (prometheus-client's
multiprocess mode, `badges/api/metrics.py`): the processes share a folder of metric files,
`PROMETHEUS_MULTIPROC_DIR` (emptied here at start; a fresh temporary folder when it is not set).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import uvicorn

from badges.config import Settings

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

APP = "badges.api.app:app_from_environment"
WORKER_START_SECONDS = 60
WS_PING_SECONDS = 20.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m badges.cli.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("BADGES_API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BADGES_API_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BADGES_API_WORKERS", "1")))
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    settings = Settings()  # type: ignore[call-arg]
    made = None
    if args.workers > 1 or os.environ.get(MULTIPROCESS_DIR):
        # Before uvicorn starts the processes: they inherit it, and prometheus-client reads it on import.
        folder = metrics_folder(os.environ.get(MULTIPROCESS_DIR))
        made = None if os.environ.get(MULTIPROCESS_DIR) else folder
        os.environ[MULTIPROCESS_DIR] = str(folder)
    try:
        serve(args, settings)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def serve(args: argparse.Namespace, settings: Settings) -> None:
    uvicorn.run(
        APP,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        ws_max_size=settings.ws_max_size,
        # Stream messages are small JSON: compressing each costs more CPU than it saves.
        ws_per_message_deflate=False,
        # After the drain, how long the requests in flight may take before they are cancelled.
        timeout_graceful_shutdown=settings.api_shutdown_seconds,
        timeout_keep_alive=settings.api_keep_alive_seconds,
        # A new worker process (SIGHUP, or one replacing a dead one) may take this long to start
        # serving on a busy machine before uvicorn gives up on it (its default is 5 s).
        timeout_worker_healthcheck=WORKER_START_SECONDS,
        # A WebSocket whose client answers no ping within 20 s is closed and its stream let go
        # (SSE streams write a heartbeat every 15 s instead: badges/api/event_stream.py).
        ws_ping_interval=WS_PING_SECONDS,
        ws_ping_timeout=WS_PING_SECONDS,
    )


def metrics_folder(configured: str | None) -> Path:
    """The processes' shared metrics folder, without metric files: those of an earlier run would count again."""
    if not configured:
        return Path(tempfile.mkdtemp(prefix="badges-metrics-"))
    folder = Path(configured)
    folder.mkdir(parents=True, exist_ok=True)
    for item in folder.glob("*.db"):
        item.unlink()
    return folder


if __name__ == "__main__":
    main()
