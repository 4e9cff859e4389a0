"""A Server-Sent Events response that holds little while a stream is idle, for tens of thousands
of open streams per process: one task beside the server's own (which waits for the client to
leave), no task group. sse-starlette's `EventSourceResponse` holds five tasks, a task group and
its cancel scopes per stream (~290 objects, ~60 KB, measured in bench/RESULTS.md); its event
encoding (`ServerSentEvent`) is used as it is.

Heartbeats come from the events themselves: the generator yields a comment when it has been idle
(`badges.api.hub.OutboxHub.messages(idle_seconds=...)`), so a dead client is found by the next
heartbeat's write (with TCP's own timeouts), and a proxy does not close a quiet stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping

from sse_starlette import ServerSentEvent
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class EventStream(Response):
    def __init__(
        self,
        events: AsyncGenerator[ServerSentEvent, None],
        status_code: int = 200,  # FastAPI's OpenAPI reads the default from here
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.events = events
        # On the instance, as sse-starlette sets it: as a class attribute FastAPI would document the
        # body as one JSON string, and a client checking each event against that schema fails.
        self.media_type = "text/event-stream"
        self.status_code = status_code
        self.background = None
        self.init_headers({**(headers or {}), "Connection": "keep-alive", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        # The server tells of a client that left only through `receive`: when it does, the stream's
        # wait for its next event is cancelled (its generators close, its subscription ends).
        left = asyncio.ensure_future(until_disconnected(receive))

        def client_left(_: asyncio.Future[None]) -> None:
            task.cancel()

        left.add_done_callback(client_left)
        try:
            async with contextlib.aclosing(self.events) as events:
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                async for event in events:
                    await send({"type": "http.response.body", "body": event.encode(), "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            # Our own cancellation (the client left) ends the stream quietly; any other goes on.
            if not left.done() or left.cancelled() or task.uncancel() > 0:
                raise
        finally:
            left.remove_done_callback(client_left)
            left.cancel()


async def until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def heartbeat() -> ServerSentEvent:
    """A comment line: clients ignore it; writing it is how a dead client is found."""
    return ServerSentEvent(comment="ping")
