"""The drain in front of uvicorn's signal handlers: SIGTERM marks the process draining (responses
say `Connection: close`), one of several processes sharing a socket stops accepting at once, and
at the drain's end the streams end before uvicorn is told to stop; a second SIGTERM stops now."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from sse_starlette.sse import AppStatus
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from badges.api.drain import CloseWhileDraining, Drain


class Listener:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def uvicorn_handlers() -> Iterator[None]:
    """The process's handlers back afterwards, and sse-starlette's process-wide flag: it patches
    uvicorn's handler to set it, and every SSE stream of the process ends while it is set."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    exiting = AppStatus.should_exit
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    AppStatus.should_exit = exiting


def server(workers: int) -> uvicorn.Server:
    """A uvicorn server as it stands once serving: its handlers installed, one listener."""
    served = uvicorn.Server(uvicorn.Config(Starlette(), workers=workers))
    served.servers = [Listener()]  # type: ignore[list-item]
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, served.handle_exit)
    return served


@pytest.mark.usefixtures("uvicorn_handlers")
@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_drains_then_ends_the_streams_before_uvicorn_stops(workers: int) -> None:
    served = server(workers)
    drain = Drain(seconds=0.3)
    ended: list[bool] = []  # whether uvicorn had been told to stop when the streams ended
    drain.install(lambda: ended.append(served.should_exit))
    signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # type: ignore[operator]
    await asyncio.sleep(0.05)
    assert drain.draining and not served.should_exit and not ended
    # Alone on its port it goes on accepting (a load balancer has yet to see it unready).
    assert served.servers[0].closed is (workers > 1)  # type: ignore[attr-defined]
    await asyncio.sleep(0.6)
    assert ended == [False] and served.should_exit
    drain.uninstall()
    assert signal.getsignal(signal.SIGTERM) == served.handle_exit


@pytest.mark.usefixtures("uvicorn_handlers")
async def test_a_second_sigterm_stops_without_the_rest_of_the_drain() -> None:
    served = server(1)
    drain = Drain(seconds=3600)
    ended: list[bool] = []
    drain.install(lambda: ended.append(True))
    handler = signal.getsignal(signal.SIGTERM)
    handler(signal.SIGTERM, None)  # type: ignore[operator]
    handler(signal.SIGTERM, None)  # type: ignore[operator]
    await asyncio.sleep(0.5)
    assert ended == [True] and served.should_exit


async def test_while_draining_every_response_closes_its_connection() -> None:
    drain = Drain(seconds=2)
    app = CloseWhileDraining(Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))]), drain)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        assert "connection" not in (await client.get("/")).headers
        drain.draining = True
        assert (await client.get("/")).headers["connection"] == "close"
