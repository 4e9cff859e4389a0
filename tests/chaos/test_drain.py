"""An API process told to stop (SIGTERM, a rolling restart) drains first: it goes on answering, each
response with `Connection: close` and /readyz with 503, and its streams go on; when it stops, its
SSE streams end with a `restart` event and a `retry` hint and its WebSockets close with 1012
(service restart), so their clients resume elsewhere from their last id."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from badges.api.routes.stream import RESTART, RESTART_RETRY_MS
from tests.chaos.conftest import System
from tests.processes import start_api, stop
from tests.support import dev_token, eventually, free_port, real_time_event

# Long enough that the checks while draining never race its end: the test ends it with a second SIGTERM.
DRAIN_SECONDS = 120


async def test_a_stopping_api_process_drains_then_ends_its_streams_with_a_reconnect_hint(
    chaos_system: System,
) -> None:
    port = free_port()
    env = {**chaos_system.env, "BADGES_API_DRAIN_SECONDS": str(DRAIN_SECONDS)}
    process = await asyncio.to_thread(
        start_api, env, port, chaos_system.log, ws_max_size=chaos_system.settings.ws_max_size
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            sub = f"drain-{uuid.uuid4()}"
            headers = await dev_token(client, sub)
            before = await client.get("/v1/me/badges", headers=headers)
            assert before.status_code == 200 and before.headers.get("connection") != "close"
            lines: list[str] = []
            opened = asyncio.Event()

            async def follow() -> None:
                async with client.stream("GET", "/v1/me/stream", headers=headers) as response:
                    assert response.status_code == 200
                    opened.set()
                    async for line in response.aiter_lines():  # to its end: no error, a clean close
                        lines.append(line)

            stream = asyncio.create_task(follow())
            await asyncio.wait_for(opened.wait(), 30)
            url = f"ws://127.0.0.1:{port}/v1/me/ws?lastEventId=0"
            async with connect(url, additional_headers=headers) as socket:
                process.send_signal(signal.SIGTERM)

                async def draining() -> bool:
                    return (await client.get("/readyz")).status_code == 503

                await eventually(draining, timeout=30)
                ready = await client.get("/readyz")
                assert ready.json()["status"] == "draining"
                # Still answering, and telling the client not to reuse the connection.
                answered = await client.get("/v1/me/badges", headers=headers)
                assert answered.status_code == 200 and answered.headers["connection"] == "close"
                # Its streams still carry what happens meanwhile (the event goes through another process).
                accepted = await chaos_system.client.post(
                    "/v1/events", json=real_time_event("drain-1", sub, "tool_usage", calculatorId="c1"), headers=headers
                )
                assert accepted.status_code == 202, accepted.text

                async def streamed() -> bool:
                    return any(line.startswith("event: progress") for line in lines)

                await eventually(streamed, timeout=60)
                assert not stream.done()

                process.send_signal(signal.SIGTERM)  # a second one: stop now, without the rest of the drain
                closed: ConnectionClosed | None = None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(30):
                        try:
                            while True:
                                await socket.recv()
                        except ConnectionClosed as error:
                            closed = error
                assert closed is not None and closed.rcvd is not None, "the WebSocket was not closed"
                assert closed.rcvd.code == 1012, closed.rcvd  # service restart
            await asyncio.wait_for(stream, 30)  # the SSE stream ended cleanly
            assert f"event: {RESTART}" in lines and f"retry: {RESTART_RETRY_MS}" in lines, lines[-6:]
        assert await asyncio.to_thread(process.wait, 30) is not None
    finally:
        await asyncio.to_thread(stop, process)
