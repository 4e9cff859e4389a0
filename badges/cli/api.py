"""`python -m badges.cli.api`: the API as the image runs it. uvicorn with the settings' bound on one
WebSocket message (`Settings.ws_max_size`, a little above the app's own 64 KiB check; uvicorn's
default is 16 MiB buffered per message), no per-message compression, and server logs with every
`access_token` value redacted (`badges/api/logs.py`).

Where it listens: `--host`/`--port` or `BADGES_API_HOST` (127.0.0.1) and `BADGES_API_PORT` (8000);
`--workers`/`BADGES_API_WORKERS` (1). Behind a proxy or load balancer, set uvicorn's
`FORWARDED_ALLOW_IPS` to its address, so limits per source address see the client's.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from badges.config import Settings

APP = "badges.api.app:app_from_environment"
GRACEFUL_SHUTDOWN_SECONDS = 5
WS_PING_SECONDS = 20.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m badges.cli.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("BADGES_API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BADGES_API_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BADGES_API_WORKERS", "1")))
    args = parser.parse_args(argv)
    settings = Settings()  # type: ignore[call-arg]
    uvicorn.run(
        APP,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        ws_max_size=settings.ws_max_size,
        # Stream messages are small JSON: compressing each costs more CPU than it saves.
        ws_per_message_deflate=False,
        # Open streams (SSE and WebSocket) never finish by themselves: on shutdown they are cut
        # after this long, and their clients resume elsewhere from their last id.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # A WebSocket whose client answers no ping within 20 s is closed and its stream let go
        # (SSE streams write a heartbeat every 15 s instead: badges/api/event_stream.py).
        ws_ping_interval=WS_PING_SECONDS,
        ws_ping_timeout=WS_PING_SECONDS,
    )


if __name__ == "__main__":
    main()
