"""`GET /v1/me/stream`: the member's progress, awards and insights as Server-Sent Events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from sse_starlette import ServerSentEvent

from badges.api.deps import MemberId, MemberPrincipal, ServicesDep
from badges.api.event_stream import EventStream, heartbeat
from badges.api.hub import MemberErasedError, ProcessStoppingError, SubscriberOverflowError
from badges.api.metrics import connected
from badges.api.problems import Problem

router = APIRouter(tags=["stream"])

PING_SECONDS = 15
# The last event of a stream whose token expired: the client reconnects with a fresh token and
# `Last-Event-ID`, and misses nothing. It has no `id`, so an EventSource keeps the last real one.
REAUTHENTICATE = "reauthenticate"
# The last event of a stream whose API process is stopping (a restart): the client reconnects after
# `retry` milliseconds (an EventSource does so by itself), with `Last-Event-ID`, to another process.
RESTART = "restart"
RESTART_RETRY_MS = 500


def parse_last_event_id(header: str | None, query: str | None) -> int | None:
    raw = header if header is not None else query
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise Problem(400, "invalid-last-event-id", "Last-Event-ID must be a non-negative integer id.")
    return int(raw)


@router.get("/v1/me/stream", response_class=EventStream)
async def stream(
    member_id: MemberId,
    principal: MemberPrincipal,
    services: ServicesDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id_query: Annotated[str | None, Query(alias="lastEventId")] = None,
) -> EventStream:
    after_id = parse_last_event_id(last_event_id, last_event_id_query)
    await services.intake.start_ahead(member_id)
    # The token was checked once, at open: the stream ends when the token does, as the WebSocket
    # closes then, so a stream never outlives the authority it was opened with.
    expires_at = principal.expires_at

    async def events() -> AsyncGenerator[ServerSentEvent, None]:
        last_sent = after_id
        deadline = None if expires_at is None else asyncio.get_running_loop().time() + (expires_at - time.time())
        messages = services.hub.messages(member_id, after_id, idle_seconds=PING_SECONDS)
        try:
            with connected(services.metrics, "sse"):
                async with contextlib.aclosing(messages):
                    while True:
                        # The deadline covers only the wait for the next message, never a send.
                        try:
                            async with asyncio.timeout_at(deadline):
                                message = await anext(messages)
                        except StopAsyncIteration:
                            return
                        except TimeoutError:
                            yield reauthenticate(last_sent)
                            return
                        if message is None:
                            yield heartbeat()
                            continue
                        last_sent = message.id
                        yield ServerSentEvent(id=str(message.id), event=message.kind, data=json.dumps(message.payload))
        except SubscriberOverflowError:
            return  # the client reconnects with Last-Event-ID and misses nothing
        except ProcessStoppingError:
            yield restart(last_sent)
        except MemberErasedError:
            return  # reconnecting answers 410

    return EventStream(events(), headers={"Cache-Control": "no-store"})


def restart(last_event_id: int | None) -> ServerSentEvent:
    """Tells the client this process is stopping: reconnect in `retry` ms, resuming after
    `lastEventId` (null: nothing was sent, resume where you resumed from)."""
    return ServerSentEvent(
        event=RESTART,
        data=json.dumps({"reason": "server-restart", "lastEventId": last_event_id}),
        retry=RESTART_RETRY_MS,
    )


def reauthenticate(last_event_id: int | None) -> ServerSentEvent:
    """Tells the client its token expired: reconnect with a fresh one, resuming after
    `lastEventId` (null: nothing was sent, resume where you resumed from)."""
    return ServerSentEvent(
        event=REAUTHENTICATE,
        data=json.dumps({"reason": "token-expired", "lastEventId": last_event_id}),
    )
