"""A graceful stop for an API process, so a rolling restart loses no request and no stream message.

On SIGTERM the process keeps serving for the drain period (`BADGES_API_DRAIN_SECONDS`): every
response says `Connection: close`, so each client's next request opens a new connection, which
another process accepts, and `/readyz` answers 503, so a load balancer stops sending. One of
several processes sharing a listening socket (uvicorn's `--workers`) stops accepting at once, as
the others take the new connections; a process alone on its port (behind a load balancer) goes on
accepting until the balancer has seen it is not ready. Then uvicorn
takes over (it stops accepting, finishes the requests in flight and closes what is idle), just
after the process's SSE and WebSocket streams end with a reconnect hint (`hub.py`), so their
clients resume from their last id on another process. SIGINT stops at once (no drain),
and a second signal stops at once too.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType, MethodType
from typing import Any

import uvicorn
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SignalHandler = Callable[[int, FrameType | None], Any]
# Between the streams' end and uvicorn's stop: their clients wait `retry` (500 ms) before they
# reconnect, by when this process no longer accepts; one that comes back sooner is ended again.
STREAMS_FIRST_SECONDS = 0.1


class Drain:
    """The process's shutdown state; `install` puts it in front of uvicorn's signal handlers."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.draining = False
        self.stopped = False
        self._replaced: dict[signal.Signals, SignalHandler] = {}
        self._ours: dict[signal.Signals, SignalHandler] = {}

    def install(self, end_streams: Callable[[], None]) -> None:
        """Under uvicorn (its server's handlers are the process's): SIGTERM drains first, SIGINT
        does not; then the streams end and uvicorn's own handler runs. Without uvicorn's handlers
        (an app driven through httpx's ASGI transport) nothing changes."""
        loop = asyncio.get_running_loop()
        for sig, delay in ((signal.SIGTERM, self.seconds), (signal.SIGINT, 0.0)):
            server_exit = signal.getsignal(sig)
            server = getattr(server_exit, "__self__", None)
            if not isinstance(server, uvicorn.Server) or not callable(server_exit):
                continue

            def received(
                server: uvicorn.Server,
                signum: int,
                frame: FrameType | None,
                server_exit: SignalHandler = server_exit,
                delay: float = delay,
            ) -> None:
                if self.stopped:  # uvicorn's own: a second SIGINT forces the exit
                    server_exit(signum, frame)
                elif self.draining:  # a second signal while draining: stop now
                    loop.call_soon_threadsafe(self._stop, server_exit, signum, end_streams)
                else:
                    self.draining = True
                    if server.config.workers > 1:
                        loop.call_soon_threadsafe(self._stop_accepting, server)
                    loop.call_soon_threadsafe(loop.call_later, delay, self._stop, server_exit, signum, end_streams)

            # Bound to the server, as uvicorn's own handler is: sse-starlette finds the server so
            # to end streams when it stops otherwise (`should_exit` set directly, as tests do).
            ours = MethodType(received, server)
            self._replaced[sig] = server_exit
            self._ours[sig] = ours
            signal.signal(sig, ours)

    def uninstall(self) -> None:
        for sig, handler in self._replaced.items():
            if signal.getsignal(sig) == self._ours[sig]:
                signal.signal(sig, handler)
        self._replaced.clear()
        self._ours.clear()

    @staticmethod
    def _stop_accepting(server: uvicorn.Server) -> None:
        """Processes sharing one listening socket (uvicorn's workers): this one stops accepting at
        once, so the connections it would take go to the others, rather than reaching it to be
        closed at its stop with their requests unread (a reset, for their clients)."""
        for listener in getattr(server, "servers", []):
            listener.close()

    def _stop(self, server_exit: SignalHandler, signum: int, end_streams: Callable[[], None]) -> None:
        if self.stopped:
            return
        self.stopped = True
        end_streams()
        asyncio.get_running_loop().call_later(STREAMS_FIRST_SECONDS, server_exit, signum, None)


class CloseWhileDraining:
    """ASGI middleware: while the process drains, every HTTP response carries `Connection: close`
    (uvicorn then closes the connection after it), so no client reuses a connection to a process
    about to close it, the race in which a request sent on an idle connection meets its close."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self._app = app
        self._drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self._drain.draining:
                MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        await self._app(scope, receive, closing)
