"""The lean SSE response: it streams what its generator yields, heartbeats while the member's
stream is idle, and lets go of everything the stream held when the client leaves."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from sse_starlette import ServerSentEvent

from badges.api.event_stream import EventStream, heartbeat
from badges.api.hub import OutboxHub, StreamMessage


class Client:
    """The server's side of one HTTP connection: what was sent, and a switch for leaving."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.left = asyncio.Event()
        self.got_request = False

    async def receive(self) -> dict[str, Any]:
        if not self.got_request:
            self.got_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


async def test_events_are_streamed_and_the_response_ends_with_the_generator() -> None:
    async def events() -> AsyncGenerator[ServerSentEvent, None]:
        yield ServerSentEvent(id="1", event="progress", data="{}")
        yield heartbeat()

    client = Client()
    await EventStream(events(), headers={"Cache-Control": "no-store"})({"type": "http"}, client.receive, client.send)
    start = client.sent[0]
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    assert (b"cache-control", b"no-store") in start["headers"]
    assert client.bodies() == [b"id: 1\r\nevent: progress\r\ndata: {}\r\n\r\n", b": ping\r\n\r\n", b""]
    assert client.sent[-1]["more_body"] is False


async def test_a_client_that_leaves_ends_the_stream_and_its_subscription() -> None:
    hub = OutboxHub(pool=None, libpq_url="")  # type: ignore[arg-type]  # no backlog: no database
    member = uuid.uuid4()

    async def events() -> AsyncGenerator[ServerSentEvent, None]:
        async for message in hub.messages(member, None):
            assert message is not None
            yield ServerSentEvent(id=str(message.id), event=message.kind, data="{}")

    client = Client()
    stream = asyncio.create_task(EventStream(events())({"type": "http"}, client.receive, client.send))
    while hub.subscriber_count == 0:
        await asyncio.sleep(0)
    for subscription in hub._subscribers[member]:
        subscription.offer(StreamMessage(7, "progress", {}))
    while len(client.bodies()) < 1:
        await asyncio.sleep(0)
    client.left.set()
    await stream  # ends quietly: no CancelledError out of the response
    assert not stream.cancelled()
    assert hub.subscriber_count == 0  # what the stream held is let go
    assert client.bodies() == [b"id: 7\r\nevent: progress\r\ndata: {}\r\n\r\n"]


async def test_an_idle_stream_yields_a_heartbeat_and_still_gets_its_next_message() -> None:
    hub = OutboxHub(pool=None, libpq_url="")  # type: ignore[arg-type]
    member = uuid.uuid4()
    messages = hub.messages(member, None, idle_seconds=0.01)
    assert await anext(messages) is None  # idle: time for a heartbeat; the stream goes on
    for subscription in hub._subscribers[member]:
        subscription.offer(StreamMessage(3, "award", {}))
    message = await anext(messages)
    assert message is not None and message.id == 3
    await messages.aclose()
    assert hub.subscriber_count == 0
