"""`WS /v1/me/ws` end to end, with a real client (`websockets`) against the real API, dev server,
worker and PostgreSQL: authentication, acks, the stream and its resume, error frames, close codes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from badges.api import hub
from badges.api.auth import issue_token
from badges.api.routes import ws
from badges.config import Settings
from tests.support import EventSystem, collect, dev_token, real_time_event, sse_events

pytestmark = pytest.mark.usefixtures("worker")

STREAM_TYPES = ("progress", "award", "insight")
WAIT = 30.0  # a guard against hanging, not an assertion about speed


class Socket:
    """A client connection that reads frames by type, keeping the others, in order, for later."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.held: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.connection.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def next(self, *types: str) -> dict[str, Any]:
        for position, frame in enumerate(self.held):
            if frame["type"] in types:
                return self.held.pop(position)
        async with asyncio.timeout(WAIT):
            while True:
                frame = json.loads(await self.connection.recv())
                if frame["type"] in types:
                    return frame
                self.held.append(frame)

    async def stream(self, count: int) -> list[dict[str, Any]]:
        return [await self.next(*STREAM_TYPES) for _ in range(count)]

    async def request(self, message: dict[str, Any] | str | bytes, *answers: str) -> dict[str, Any]:
        await self.send(message)
        return await self.next(*answers)

    async def ping(self) -> None:
        assert await self.request({"type": "ping"}, "pong") == {"type": "pong"}

    async def closed(self) -> tuple[int | None, str | None]:
        """Reads until the server closes (keeping what arrives); the close code and reason."""
        async with asyncio.timeout(WAIT):
            with contextlib.suppress(ConnectionClosed):
                while True:
                    self.held.append(json.loads(await self.connection.recv()))
        return self.connection.close_code, self.connection.close_reason


@asynccontextmanager
async def open_socket(
    api_url: str,
    query: str = "",
    headers: dict[str, str] | None = None,
    subprotocols: list[str] | None = None,
) -> AsyncIterator[Socket]:
    url = api_url.replace("http://", "ws://", 1) + "/v1/me/ws" + query
    async with connect(
        url,
        additional_headers=headers,
        subprotocols=[Subprotocol(name) for name in subprotocols] if subprotocols else None,
        proxy=None,
        open_timeout=WAIT,
    ) as connection:
        yield Socket(connection)


async def member(client: httpx.AsyncClient) -> tuple[str, dict[str, str], str]:
    """A new member: their token's sub, Authorization header and bare token."""
    sub = f"{uuid.uuid4()}@example.com"
    headers = await dev_token(client, sub)
    return sub, headers, headers["Authorization"].removeprefix("Bearer ")


def event_message(event_id: str, sub: str, type_: str = "tool_usage", **data: Any) -> dict[str, Any]:
    return {"type": "event", "event": real_time_event(event_id, sub, type_, **data)}


async def outbox_of(pool: AsyncConnectionPool, client: httpx.AsyncClient, headers: dict[str, str]) -> list[Any]:
    """What the member's stream must carry, from the table itself: (id, type, data) in id order."""
    member_id = uuid.UUID((await client.get("/v1/me", headers=headers)).json()["userId"])
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT id, kind, payload FROM outbox WHERE user_id = %s ORDER BY id", (member_id,)
        )
        return [{"id": row[0], "type": row[1], "data": row[2]} for row in await cursor.fetchall()]


async def wait_for_progress(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str, value: int) -> None:
    for _ in range(300):
        badges = (await client.get("/v1/me/badges", headers=headers)).json()["badges"]
        if next(b for b in badges if b["badgeId"] == badge_id)["progress"] == value:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{badge_id} never reached {value}")


async def until_badge(socket: Socket, badge_id: str, value: int | None = None) -> list[dict[str, Any]]:
    """Stream frames up to and including the one about `badge_id` (at `value`, for progress)."""
    received: list[dict[str, Any]] = []
    while True:
        [frame] = await socket.stream(1)
        received.append(frame)
        if frame["data"].get("badgeId") == badge_id and (value is None or frame["data"].get("value") == value):
            return received


# --- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize("where", ["header", "query", "subprotocol", "first-message"])
async def test_a_member_connects_with_a_token_from_each_place(
    where: str, api_url: str, client: httpx.AsyncClient
) -> None:
    sub, headers, token = await member(client)
    options: dict[str, Any] = {
        "header": {"headers": headers},
        "query": {"query": f"?access_token={token}"},
        "subprotocol": {"subprotocols": ["bearer", token]},
        "first-message": {},
    }[where]
    async with open_socket(api_url, **options) as socket:
        if where == "first-message":
            await socket.send({"type": "auth", "token": token})
        # The token was read as this member's: an event about them is accepted.
        ack = await socket.request(event_message("first", sub), "ack", "error")
        assert ack == {"type": "ack", "id": "first", "status": "accepted"}
        await socket.ping()
        # The token itself is never echoed back as the chosen subprotocol.
        assert socket.connection.subprotocol == ("bearer" if where == "subprotocol" else None)


@pytest.mark.parametrize(
    "case", ["forged-header", "expired-query", "staff-subprotocol", "bad-first-message", "no-token-at-all"]
)
async def test_bad_or_missing_tokens_are_closed_with_1008(
    case: str, api_url: str, client: httpx.AsyncClient, system_settings: Settings
) -> None:
    expired = issue_token(system_settings, "late@example.com", ["user"], ttl=-60)
    operator = (await dev_token(client, "ops@example.com", ["operator"]))["Authorization"].removeprefix("Bearer ")
    options, first, reason = {
        "forged-header": ({"headers": {"Authorization": "Bearer not.a.jwt"}}, None, "invalid token"),
        "expired-query": ({"query": f"?access_token={expired}"}, None, "invalid token"),
        "staff-subprotocol": ({"subprotocols": ["bearer", operator]}, None, "invalid token"),
        "bad-first-message": ({}, {"type": "auth", "token": "not.a.jwt"}, "invalid token"),
        "no-token-at-all": ({}, {"type": "ping"}, "missing token"),
    }[case]
    async with open_socket(api_url, **options) as socket:
        if first is not None:
            await socket.send(first)
        assert await socket.closed() == (1008, reason)
        assert socket.held == []  # nothing was streamed or answered before the close


async def test_a_client_that_never_authenticates_is_closed_with_1008(
    api_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws, "AUTH_TIMEOUT_SECONDS", 0.2)  # the server runs in this process
    async with open_socket(api_url) as socket:
        assert await socket.closed() == (1008, "missing token")


async def test_the_connection_ends_when_its_token_expires(api_url: str, system_settings: Settings) -> None:
    # Checked once at open, so the server must end the socket itself at `exp`.
    short = issue_token(system_settings, f"brief-{uuid.uuid4()}@example.com", ["user"], ttl=2)
    async with open_socket(api_url, headers={"Authorization": f"Bearer {short}"}) as socket:
        await socket.ping()
        assert await socket.closed() == (1008, "token expired")


# --- events in, stream out ----------------------------------------------------------------


async def test_an_event_is_acked_once_and_its_progress_arrives_with_an_id(
    api_url: str, client: httpx.AsyncClient
) -> None:
    sub, headers, _ = await member(client)
    async with open_socket(api_url, headers=headers) as socket:
        await socket.ping()
        first = await socket.request(event_message("calc-1", sub), "ack")
        assert first == {"type": "ack", "id": "calc-1", "status": "accepted"}
        again = await socket.request(event_message("calc-1", sub), "ack")
        assert again == {"type": "ack", "id": "calc-1", "status": "duplicate"}
        # The same intake as HTTP: the id is known there too.
        over_http = await client.post("/v1/events", json=real_time_event("calc-1", sub), headers=headers)
        assert over_http.status_code == 200 and over_http.json()["status"] == "duplicate"

        [progress] = [f for f in await until_badge(socket, "calculator-explorer") if f["type"] == "progress"]
        assert isinstance(progress["id"], int)
        assert set(progress) == {"id", "type", "data"}
        assert progress["data"]["value"] == 1 and progress["data"]["target"] == 3

        for event_id in ("calc-2", "calc-3"):
            assert (await socket.request(event_message(event_id, sub), "ack"))["status"] == "accepted"
        later = await until_badge(socket, "calculator-explorer")
        while later[-1]["type"] != "award":
            later += await until_badge(socket, "calculator-explorer")
    ids = [progress["id"]] + [frame["id"] for frame in later]
    assert ids == sorted(set(ids))  # increasing, none repeated


async def test_resume_gets_exactly_the_later_messages(
    api_url: str, client: httpx.AsyncClient, pool: AsyncConnectionPool, event_system: EventSystem
) -> None:
    sub, headers, token = await member(client)
    async with open_socket(api_url, headers=headers) as socket:
        await socket.ping()
        assert (await event_system.post(real_time_event("v1", sub, "voting"))).status_code == 202
        first = (await until_badge(socket, "active-voter", 1))[-1]
        assert (await event_system.post(real_time_event("v2", sub, "voting"))).status_code == 202
        await until_badge(socket, "active-voter", 2)
    # Disconnected: more happens while the member is away.
    for i in range(3, 6):
        response = await event_system.post(real_time_event(f"v{i}", sub, "voting"))
        assert response.status_code == 202
    await wait_for_progress(client, headers, "active-voter", 5)
    expected = [message for message in await outbox_of(pool, client, headers) if message["id"] > first["id"]]
    assert any(message["type"] == "award" for message in expected)

    async with open_socket(api_url, query=f"?lastEventId={first['id']}", headers=headers) as socket:
        assert await socket.stream(len(expected)) == expected
    # The same by a resume message, right after a first-message auth.
    async with open_socket(api_url) as socket:
        await socket.send({"type": "auth", "token": token})
        await socket.send({"type": "resume", "after": first["id"]})
        assert await socket.stream(len(expected)) == expected

    # Resuming from the last id gives nothing old: the next thing seen is new.
    last_id = expected[-1]["id"]
    async with open_socket(api_url, query=f"?lastEventId={last_id}", headers=headers) as socket:
        assert (await event_system.post(real_time_event("a1", sub, "attendance"))).status_code == 202
        [fresh] = await socket.stream(1)
    assert fresh["id"] > last_id
    assert fresh in await outbox_of(pool, client, headers)


async def test_a_bad_last_event_id_gets_an_error_frame_and_1008(api_url: str, client: httpx.AsyncClient) -> None:
    _, headers, _ = await member(client)
    async with open_socket(api_url, query="?lastEventId=yesterday", headers=headers) as socket:
        assert await socket.closed() == (1008, "invalid lastEventId")
    [error] = socket.held
    assert error["type"] == "error" and error["code"] == "invalid-last-event-id"


async def test_sse_and_websocket_clients_of_one_member_see_the_same_ids(
    api_url: str, client: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    sub, headers, _ = await member(client)
    async with (
        client.stream("GET", "/v1/me/stream", headers=headers) as sse,
        open_socket(api_url, headers=headers) as socket,
    ):
        events = sse_events(sse)
        await socket.ping()
        for event_id in ("calc-1", "calc-2", "calc-3"):
            response = await client.post("/v1/events", json=real_time_event(event_id, sub), headers=headers)
            assert response.status_code == 202
        await wait_for_progress(client, headers, "calculator-explorer", 3)
        expected = await outbox_of(pool, client, headers)
        over_sse = await collect(events, len(expected))
        over_ws = await socket.stream(len(expected))
    assert [item.id for item in over_sse] == [frame["id"] for frame in over_ws] == [m["id"] for m in expected]
    assert over_ws == expected
    assert [{"id": i.id, "type": i.event, "data": i.data} for i in over_sse] == expected


async def test_a_stream_that_falls_behind_is_closed_with_1013_and_resumes_losing_nothing(
    api_url: str, client: httpx.AsyncClient, pool: AsyncConnectionPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A one-message buffer overflows as soon as one batch writes two rows (the third use writes
    # progress and the award together). The server runs in this process.
    monkeypatch.setattr(hub, "SUBSCRIBER_BUFFER", 1)
    sub, headers, _ = await member(client)
    async with open_socket(api_url, headers=headers) as socket:
        await socket.ping()
        for event_id in ("calc-1", "calc-2", "calc-3"):
            response = await client.post("/v1/events", json=real_time_event(event_id, sub), headers=headers)
            assert response.status_code == 202
        assert await socket.closed() == (1013, "stream fell behind; resume from your last id")
    monkeypatch.undo()
    seen = [frame for frame in socket.held if frame["type"] in STREAM_TYPES]
    await wait_for_progress(client, headers, "calculator-explorer", 3)
    expected = await outbox_of(pool, client, headers)
    last_id = seen[-1]["id"] if seen else 0
    async with open_socket(api_url, query=f"?lastEventId={last_id}", headers=headers) as socket:
        rest = await socket.stream(len([m for m in expected if m["id"] > last_id]))
    assert seen + rest == expected


# --- errors -------------------------------------------------------------------------------


async def test_bad_messages_get_typed_error_frames_and_the_socket_stays_usable(
    api_url: str, client: httpx.AsyncClient
) -> None:
    sub, headers, _ = await member(client)
    no_type = real_time_event("no-type", sub)
    del no_type["type"]
    future = real_time_event("too-soon", sub)
    future["timestamp"] = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    async with open_socket(api_url, headers=headers) as socket:
        await socket.ping()
        malformed = await socket.request("{not json", "error")
        assert malformed["code"] == "malformed-frame" and malformed["detail"]
        assert (await socket.request("[1, 2]", "error"))["code"] == "malformed-frame"
        unknown = await socket.request({"type": "dance"}, "error")
        assert unknown["code"] == "unknown-message-type" and "dance" in unknown["detail"]

        invalid = await socket.request({"type": "event", "event": no_type}, "error")
        assert invalid["code"] == "invalid-event" and invalid["id"] == "no-type"
        assert [error["field"] for error in invalid["errors"]] == ["event.type"]
        assert "event.type" in invalid["detail"]

        theirs = await socket.request(event_message("theirs", "alice@example.com"), "error")
        assert theirs == {
            "type": "error",
            "code": "not-your-event",
            "detail": "A member may post events only for their own userId.",
            "id": "theirs",
        }
        binary = await socket.request(b"\x00\x01binary", "error")
        assert binary["code"] == "binary-frame"
        # A Problem raised by the intake keeps its HTTP slug.
        too_soon = await socket.request({"type": "event", "event": future}, "error")
        assert too_soon["code"] == "event-from-the-future" and too_soon["id"] == "too-soon"
        assert (await socket.request({"type": "resume", "after": -1}, "error"))["code"] == "invalid-last-event-id"
        assert (await socket.request({"type": "resume", "after": 1}, "error"))["code"] == "resume-too-late"
        assert (await socket.request({"type": "auth", "token": "x"}, "error"))["code"] == "already-authenticated"
        invalid_message = await socket.request({"type": "event", "event": "not an object"}, "error")
        assert invalid_message["code"] == "invalid-message"
        assert [error["field"] for error in invalid_message["errors"]] == ["message.event"]

        # Still up, still this member's: a good event after all of that is accepted and streamed.
        ack = await socket.request(event_message("good", sub), "ack")
        assert ack == {"type": "ack", "id": "good", "status": "accepted"}
        await until_badge(socket, "calculator-explorer", 1)
        await socket.ping()
        assert socket.held == [] or all(frame["type"] in STREAM_TYPES for frame in socket.held)


@pytest.mark.parametrize("size", ["just-over-the-app-limit", "over-the-server-limit"])
async def test_an_oversized_frame_closes_with_1009(
    size: str, api_url: str, client: httpx.AsyncClient, system_settings: Settings
) -> None:
    sub, headers, _ = await member(client)
    limit = system_settings.max_body_bytes
    length = limit + 1 if size == "just-over-the-app-limit" else system_settings.ws_max_size + 64 * 1024
    body = json.dumps(event_message("big", sub, blob=""))
    oversized = body.replace('"blob": ""', '"blob": "' + "x" * (length - len(body)) + '"')
    assert len(oversized.encode()) == length
    async with open_socket(api_url, headers=headers) as socket:
        await socket.ping()
        await socket.send(oversized)
        code, reason = await socket.closed()
    assert code == 1009
    # Just over the app's limit the app's own check closes (with its reason); far over it, the
    # server's bound (uvicorn ws_max_size) closes before the app reads the message.
    assert (reason == f"message over {limit} bytes") == (size == "just-over-the-app-limit")


# --- no leaks -------------------------------------------------------------------------------


async def test_closed_sockets_leave_no_tasks_or_subscriptions_behind(
    api_url: str, client: httpx.AsyncClient, system_settings: Settings
) -> None:
    operator = await dev_token(client, "ops@example.com", ["operator"])

    async def subscribers() -> int:
        return int((await client.get("/v1/admin/metrics", headers=operator)).json()["streamSubscribers"])

    def socket_tasks() -> list[asyncio.Task[Any]]:  # the server runs in this process and loop
        return [task for task in asyncio.all_tasks() if task.get_name().startswith("ws-")]

    async def settled(baseline: int) -> bool:
        for _ in range(200):
            if not socket_tasks() and await subscribers() == baseline:
                return True
            await asyncio.sleep(0.05)
        return False

    baseline = await subscribers()
    _, headers, _ = await member(client)
    # A client that says goodbye.
    async with open_socket(api_url, headers=headers) as socket:
        await socket.ping()
        assert len(socket_tasks()) == 2 and await subscribers() == baseline + 1  # read, forward (expiry: a timer)
    assert await settled(baseline)
    # A client that vanishes without a close frame.
    async with open_socket(api_url, headers=headers) as socket:
        await socket.ping()
        assert len(socket_tasks()) == 2
        socket.connection.transport.abort()
    assert await settled(baseline)
    # The server closing (an oversized frame).
    async with open_socket(api_url, headers=headers) as socket:
        await socket.ping()
        await socket.send("x" * (system_settings.max_body_bytes + 1))
        assert (await socket.closed())[0] == 1009
    assert await settled(baseline)
