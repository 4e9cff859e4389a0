"""Helpers for tests that drive the running system over HTTP: the API server, SSE, tokens."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp

from badges.api.app import create_app
from badges.config import Settings
from badges.domain.definitions import BadgeDefinition, BadgeSpec
from badges.domain.signatures import sign


def top_saver(version: int = 1) -> BadgeDefinition:
    """The comparative badge the shipped catalogue has (top 5 % and top 1 % savings rate in the
    member's postcode groups), as the tests of comparative awards build it."""
    return BadgeDefinition.from_spec(
        "top-saver",
        version,
        BadgeSpec.model_validate(
            {
                "name": "Top saver",
                "rule": {"kind": "comparative", "metric": "savings_rate"},
                "config": {
                    "openBanking": {"providers": ["plaid"]},
                    "comparativeAnalytics": {"comparisonGroups": ["postcode"], "percentileTargets": [95, 99]},
                },
            }
        ),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def statements_on(engine: AsyncEngine, table: str) -> Iterator[list[str]]:
    """The SQL statements `engine` runs on `table` inside the block, to prove a path reads nothing."""
    statements: list[str] = []

    def listener(connection: object, cursor: object, statement: str, *rest: object) -> None:
        if table in statement:
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", listener)


@asynccontextmanager
async def serving(app: ASGIApp, port: int | None = None, **config: Any) -> AsyncIterator[str]:
    """`app` served by uvicorn on `port` (default: a free one); yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1, **config)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def running_api(settings: Settings, port: int | None = None) -> AsyncIterator[str]:
    """The real API served by uvicorn; yields its base URL."""
    app = create_app(settings)
    async with serving(app, port, ws_max_size=settings.ws_max_size, ws_per_message_deflate=False) as url:
        yield url


@dataclass
class SseEvent:
    id: int | None  # None: an event without an id (the stream's closing `reauthenticate`)
    event: str
    data: dict[str, Any]


async def sse_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    """Parse a text/event-stream body; comments (pings) are skipped."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                event_id = int(fields["id"]) if "id" in fields else None
                yield SseEvent(event_id, fields.get("event", "message"), json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


async def for_badge(stream: AsyncIterator[SseEvent], badge_id: str) -> AsyncIterator[SseEvent]:
    """Only one badge's messages: an event feeds every badge whose rule it matches."""
    async for item in stream:
        if item.data.get("badgeId") == badge_id:
            yield item


async def collect(stream: AsyncIterator[SseEvent], count: int, timeout: float = 20.0) -> list[SseEvent]:
    received: list[SseEvent] = []

    async def gather() -> None:
        async for item in stream:
            received.append(item)
            if len(received) == count:
                return

    try:
        await asyncio.wait_for(gather(), timeout)
    except TimeoutError as exc:
        raise AssertionError(f"expected {count} stream events, got {len(received)}: {received}") from exc
    return received


async def dev_token(client: httpx.AsyncClient, sub: str, scopes: list[str] | None = None) -> dict[str, str]:
    response = await client.post("/v1/dev/token", json={"sub": sub, "scopes": scopes or ["user"]})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def real_time_event(event_id: str, user_id: str, type_: str = "tool_usage", **data: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": type_,
        "userId": user_id,
        "eventData": data,
        "timestamp": datetime.now(UTC).isoformat(),
    }


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Wait until `check()` holds (polling), or fail the test."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


class EventSystem:
    """A signed integration, as a venue's scanner or the voting system posts attendance and votes
    (facts a member's own token may not report)."""

    def __init__(self, client: httpx.AsyncClient, integration_id: str, secret: bytes) -> None:
        self.client = client
        self.integration_id = integration_id
        self.secret = secret

    @classmethod
    async def register(cls, client: httpx.AsyncClient, event_types: list[str] | None = None) -> EventSystem:
        integration_id = f"system-{uuid.uuid4().hex[:12]}"
        response = await client.post(
            "/v1/admin/integrations",
            json={"integrationId": integration_id, "eventTypes": event_types or ["attendance", "voting", "tool_usage"]},
            headers=await dev_token(client, "admin@example.com", ["admin"]),
        )
        assert response.status_code == 201, response.text
        return cls(client, integration_id, response.json()["secret"].encode())

    async def post(self, event: dict[str, Any]) -> httpx.Response:
        body = json.dumps(event).encode()
        header = sign(self.secret, int(time.time()), body)
        return await self.client.post(
            f"/v1/integrations/{self.integration_id}/events",
            content=body,
            headers={"content-type": "application/json", "X-Badges-Signature": header},
        )
