"""`GET /v1/me/stream`: the member's progress, awards and insights as Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from badges.api.deps import MemberId, ServicesDep
from badges.api.hub import MemberErasedError, SubscriberOverflowError
from badges.api.problems import Problem

router = APIRouter(tags=["stream"])

PING_SECONDS = 15


def parse_last_event_id(header: str | None, query: str | None) -> int | None:
    raw = header if header is not None else query
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise Problem(400, "invalid-last-event-id", "Last-Event-ID must be a non-negative integer id.")
    return int(raw)


@router.get("/v1/me/stream", response_class=EventSourceResponse)
async def stream(
    member_id: MemberId,
    services: ServicesDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id_query: Annotated[str | None, Query(alias="lastEventId")] = None,
) -> EventSourceResponse:
    after_id = parse_last_event_id(last_event_id, last_event_id_query)
    await services.intake.start_ahead(member_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            async for message in services.hub.messages(member_id, after_id):
                yield ServerSentEvent(id=str(message.id), event=message.kind, data=json.dumps(message.payload))
        except SubscriberOverflowError:
            return  # the client reconnects with Last-Event-ID and misses nothing
        except MemberErasedError:
            return  # reconnecting answers 410

    return EventSourceResponse(events(), ping=PING_SECONDS, headers={"Cache-Control": "no-store"})
