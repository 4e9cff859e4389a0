"""Dead peers are found and what their streams held is let go: a WebSocket client that stops
answering the server's pings is closed, an SSE client whose socket goes away ends its stream;
either way the member's subscription leaves the outbox hub."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from websockets.asyncio.client import connect

from badges.api.app import create_app
from badges.api.auth import issue_token
from badges.api.hub import OutboxHub
from badges.config import Settings
from tests.support import serving

pytestmark = pytest.mark.usefixtures("worker")


async def held_by(hub: OutboxHub, count: int) -> None:
    async with asyncio.timeout(30):
        while hub.subscriber_count != count:
            await asyncio.sleep(0.05)


async def test_a_websocket_peer_that_stops_answering_pings_is_closed_and_unsubscribed(
    system_settings: Settings,
) -> None:
    app = create_app(system_settings)
    token = issue_token(system_settings, f"silent-{uuid.uuid4()}", ["user"])
    # Pings every 0.2 s here (20 s in `python -m badges.cli.api`), a pong due within 0.2 s.
    async with serving(app, ws_ping_interval=0.2, ws_ping_timeout=0.2, ws_per_message_deflate=False) as url:
        socket_url = url.replace("http://", "ws://") + "/v1/me/ws?lastEventId=0"  # subscribed at once
        async with connect(
            socket_url,
            additional_headers={"Authorization": f"Bearer {token}"},
            proxy=None,
        ) as connection:
            hub: OutboxHub = app.state.services.hub
            await held_by(hub, 1)  # connected, answering pings
            # Then the client's app freezes (or its network goes): it reads nothing more, so no
            # pong ever comes back, though its kernel may still acknowledge what is sent.
            connection.transport.pause_reading()
            await held_by(hub, 0)  # uvicorn closes the socket, and the member's stream ends


async def test_an_sse_client_whose_socket_goes_away_ends_its_stream(system_settings: Settings) -> None:
    app = create_app(system_settings)
    token = issue_token(system_settings, f"gone-{uuid.uuid4()}", ["user"])
    async with serving(app) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"GET /v1/me/stream HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        )
        assert b" 200 " in await reader.readline()
        hub: OutboxHub = app.state.services.hub
        await held_by(hub, 1)
        writer.transport.abort()  # no goodbye: the socket is reset
        await held_by(hub, 0)
