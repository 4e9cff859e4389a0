"""Generated frames against `WS /v1/me/ws` on the running system: arbitrary text and binary frames,
malformed and deeply nested JSON, known message types with wrong fields and types, text that
cannot be stored, and frames past the size limit. Nothing crashes: every frame is answered with a
well-formed frame (an error frame names a known code) or nothing, the connection stays usable,
and it closes only as documented (1009 for an oversized frame, 1008 for a missing or bad token),
never 1011. `make fuzz` runs many more examples."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from badges.config import Settings
from tests.integration.test_ws import WAIT, Socket, member, open_socket

pytestmark = [pytest.mark.fuzz, pytest.mark.usefixtures("worker")]

STREAM_TYPES = {"progress", "award", "insight"}
# Every code an error frame may carry (docs/api/streams.md, the WebSocket).
ERROR_CODES = {
    "malformed-frame",
    "needs-attestation",
    "binary-frame",
    "unknown-message-type",
    "invalid-message",
    "invalid-event",
    "not-your-event",
    "invalid-last-event-id",
    "resume-too-late",
    "already-authenticated",
    "event-from-the-future",
    "event-too-old",
    "rate-limited",
    "temporal-unavailable",
    "database-unavailable",
    "member-erased",
}

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10,
)
# Text a JSON document may carry as escapes but that cannot be stored or encoded.
unstorable = st.sampled_from(["\x00", "\ud800", "\udfff", "a\x00b"])
fields = st.one_of(json_values, unstorable)


def event(sub: str) -> st.SearchStrategy[dict[str, Any]]:
    """An event message: often valid and the member's own, else wrong in one or more fields."""
    return st.fixed_dictionaries(
        {
            "type": st.just("event"),
            "event": st.fixed_dictionaries(
                {
                    "id": st.one_of(st.uuids().map(lambda u: f"fz-{u.hex}"), fields),
                    "type": st.one_of(st.sampled_from(["tool_usage", "attendance", "voting"]), fields),
                    "userId": st.one_of(st.just(sub), fields),
                    "eventData": st.one_of(st.dictionaries(st.one_of(st.text(max_size=6), unstorable), fields), fields),
                    "timestamp": st.one_of(st.just(datetime.now(UTC).isoformat()), fields),
                },
                optional={"extra": fields},
            ),
        },
        optional={"more": fields},
    )


def messages(sub: str) -> st.SearchStrategy[dict[str, Any]]:
    known = st.sampled_from(["auth", "resume", "event", "ping", "pong", "ack", "error"])
    return st.one_of(
        event(sub),
        st.fixed_dictionaries(
            {"type": st.just("resume"), "after": st.one_of(st.integers(), st.text(max_size=25), fields)}
        ),
        st.fixed_dictionaries({"type": st.just("auth"), "token": fields}),
        st.dictionaries(st.text(max_size=8), fields, max_size=3).flatmap(
            lambda rest: st.one_of(known, fields).map(lambda kind: {**rest, "type": kind})
        ),
    )


def frames(sub: str) -> st.SearchStrategy[str | bytes]:
    return st.one_of(
        messages(sub).map(json.dumps),  # escapes kept: \u0000 and \ud800 reach the server's parser
        json_values.map(json.dumps),
        st.text(max_size=200),
        st.binary(max_size=200),
        st.integers(1, 30_000).map(lambda depth: "[" * depth + "]" * depth),  # within 64 KiB
        st.integers(1, 10_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
        st.integers(4_000, 20_000).map(lambda digits: '{"type": "resume", "after": ' + "9" * digits + "}"),
    )


def check(frame: str | bytes) -> dict[str, Any]:
    """A server frame: JSON text, of a known type; an error frame names a known code."""
    assert isinstance(frame, str), frame
    message = json.loads(frame)
    assert isinstance(message, dict) and message.get("type") in {"error", "pong", "ack", *STREAM_TYPES}, message
    if message["type"] == "error":
        assert message.get("code") in ERROR_CODES and isinstance(message.get("detail"), str), message
    return message


async def answered(socket: Socket, frame: str | bytes) -> list[dict[str, Any]]:
    """Sends `frame`, then a marker only this test sends (an event refused with its id quoted),
    and reads up to the marker's answer: everything the frame brought about, checked."""
    marker = f"marker-{uuid.uuid4().hex}"
    await socket.connection.send(frame)
    await socket.connection.send(json.dumps({"type": "event", "event": {"id": marker}}))
    received = []
    async with asyncio.timeout(WAIT):
        while True:
            message = check(await socket.connection.recv())
            if message.get("id") == marker:
                assert message["code"] == "invalid-event"
                return received
            received.append(message)


@given(data=st.data())
async def test_any_frames_are_answered_and_the_connection_stays_usable(
    api_url: str, client: httpx.AsyncClient, system_settings: Settings, data: st.DataObject
) -> None:
    sub, headers, _ = await member(client)
    sent = data.draw(st.lists(frames(sub), min_size=1, max_size=6))
    oversized = data.draw(st.sampled_from([None, "app", "server"]))
    async with open_socket(api_url, headers=headers) as socket:
        for frame in sent:
            await answered(socket, frame)
        assert await socket.request({"type": "ping"}, "pong") == {"type": "pong"}
        if oversized is None:
            return
        # Past the app's limit (checked by the app) or past uvicorn's `ws_max_size` (checked by it).
        size = system_settings.max_body_bytes + 1 if oversized == "app" else system_settings.ws_max_size + 1
        await socket.connection.send(data.draw(st.sampled_from(["x" * size, b"x" * size])))
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(WAIT):
                while True:
                    check(await socket.connection.recv())
        assert socket.connection.close_code == 1009


@given(data=st.data())
async def test_any_first_frame_without_a_token_is_closed_as_documented(
    api_url: str, client: httpx.AsyncClient, data: st.DataObject
) -> None:
    sub, _, token = await member(client)
    first = data.draw(st.one_of(frames(sub), st.just(json.dumps({"type": "auth", "token": token}))))
    async with open_socket(api_url) as socket:
        await socket.connection.send(first)
        if first == json.dumps({"type": "auth", "token": token}):
            assert await socket.request({"type": "ping"}, "pong") == {"type": "pong"}
            return
        code, reason = await socket.closed()
        assert (code, reason) in (
            (1008, "missing token"),
            (1008, "invalid token"),
            (1009, f"message over {65536} bytes"),
        )
        assert socket.held == []
