"""`WS /v1/me/ws`: the member's stream (the same messages as SSE) and a channel to send events back,
on one authenticated WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, WebSocket, status
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter, ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from badges.api.auth import Principal
from badges.api.deps import Services, ServicesDep, SettingsDep, authenticate_member
from badges.api.hub import MemberErasedError, ProcessStoppingError, StreamMessage, SubscriberOverflowError
from badges.api.metrics import connected
from badges.api.problems import DATABASE_UNAVAILABLE, Problem
from badges.api.routes.stream import parse_last_event_id
from badges.config import Settings
from badges.domain.event_data import text_problem
from badges.domain.events import ID_MAX_LENGTH, RealTimeEvent
from badges.domain.json_input import JsonTooDeep, parse_json

router = APIRouter(tags=["stream"])
log = logging.getLogger("badges.api.ws")

# Browsers cannot set headers on a WebSocket; they offer `bearer, <token>` as subprotocols instead.
BEARER_SUBPROTOCOL = "bearer"
AUTH_TIMEOUT_SECONDS = 10.0
# Without ?lastEventId the stream starts at the client's first message (a resume picks the point)
# or after this long; what is written meanwhile is held back, not lost.
RESUME_WAIT_SECONDS = 1.0


# Client → server messages.


class AuthMessage(BaseModel):
    type: Literal["auth"]
    token: str = Field(min_length=1)


class ResumeMessage(BaseModel):
    type: Literal["resume"]
    after: StrictInt | str  # checked by parse_last_event_id, like ?lastEventId


class EventMessage(BaseModel):
    type: Literal["event"]
    # Validated on its own, so an invalid event's errors name its fields and quote its id.
    event: dict[str, Any]


class PingMessage(BaseModel):
    type: Literal["ping"]


ClientMessage = Annotated[AuthMessage | ResumeMessage | EventMessage | PingMessage, Field(discriminator="type")]
client_message: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


# Server → client messages other than the stream's own `{"id", "type", "data"}`.


class Ack(BaseModel):
    type: Literal["ack"] = "ack"
    id: str
    status: Literal["accepted", "duplicate"]


class ErrorFrame(BaseModel):
    # Extra fields carry a Problem's extensions (`retryAfter` when rate-limited), as in HTTP.
    model_config = ConfigDict(extra="allow")

    type: Literal["error"] = "error"
    code: str  # the HTTP problem slug where one exists
    detail: str
    id: str | None = None  # the event's id, when the frame is about an event and its id is known
    errors: list[dict[str, str]] | None = None


PONG = json.dumps({"type": "pong"})


class FrameError(Exception):
    """A client message that cannot be carried out; answered with an error frame, the socket stays up."""

    def __init__(self, frame: ErrorFrame) -> None:
        super().__init__(frame.detail)
        self.frame = frame

    @classmethod
    def of(cls, code: str, detail: str, **fields: Any) -> FrameError:
        return cls(ErrorFrame(code=code, detail=detail, **fields))

    @classmethod
    def from_problem(cls, problem: Problem, event_id: str | None = None) -> FrameError:
        return cls(ErrorFrame(code=problem.slug, detail=problem.detail, id=event_id, **problem.extensions))


class CloseConnection(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def field_errors(error: ValidationError, prefix: str, tag: str | None = None) -> list[dict[str, str]]:
    """Errors as HTTP problems list them; `tag` is the union member pydantic puts first in each location."""
    errors = []
    for item in error.errors():
        location = item["loc"][1:] if tag is not None and item["loc"][:1] == (tag,) else item["loc"]
        field = ".".join(str(part) for part in (prefix, *location))
        errors.append({"field": field, "message": item["msg"], "type": item["type"]})
    return errors


def parse_client_message(frame: str | bytes) -> ClientMessage:
    if isinstance(frame, bytes):
        raise FrameError.of("binary-frame", "Messages are JSON text frames; binary frames are not read.")
    try:
        raw = parse_json(frame)
    except JsonTooDeep as exc:  # thousands of nested brackets fit in one frame
        raise FrameError.of("malformed-frame", "The message is nested too deeply.") from exc
    except ValueError as exc:
        raise FrameError.of("malformed-frame", "The message is not valid JSON.") from exc
    if not isinstance(raw, dict) or "type" not in raw:
        raise FrameError.of("malformed-frame", 'A message is a JSON object with a "type".')
    try:
        return client_message.validate_python(raw)
    except ValidationError as exc:
        tag_errors = [item for item in exc.errors() if item["type"] == "union_tag_invalid"]
        if tag_errors:
            expected = tag_errors[0].get("ctx", {}).get("expected_tags", "")
            raise FrameError.of(
                "unknown-message-type", f"Unknown message type {raw['type']!r}; expected one of: {expected}."
            ) from exc
        errors = field_errors(exc, "message", tag=str(raw["type"]))
        fields = ", ".join(error["field"] for error in errors)
        raise FrameError.of("invalid-message", f"The message is not valid: {fields}", errors=errors) from exc


def event_from_message(message: EventMessage) -> RealTimeEvent:
    try:
        return RealTimeEvent.model_validate(message.event)
    except ValidationError as exc:
        raw_id = message.event.get("id")
        errors = field_errors(exc, "event")
        fields = ", ".join(error["field"] for error in errors)
        # An id is quoted back only if it can be sent: no lone surrogate, within the id's length.
        quotable = isinstance(raw_id, str) and len(raw_id) <= ID_MAX_LENGTH and text_problem(raw_id) is None
        raise FrameError.of(
            "invalid-event",
            f"The event is not valid: {fields}",
            id=raw_id if quotable else None,
            errors=errors,
        ) from exc


def handshake_token(websocket: WebSocket) -> str | None:
    """The bearer token sent with the handshake: the Authorization header, else ?access_token=,
    else the subprotocol offered after "bearer"."""
    scheme, credentials = get_authorization_scheme_param(websocket.headers.get("authorization"))
    if scheme.lower() == "bearer" and credentials:
        return credentials
    if token := websocket.query_params.get("access_token"):
        return token
    offered: list[str] = websocket.scope.get("subprotocols", [])
    if BEARER_SUBPROTOCOL in offered:
        position = offered.index(BEARER_SUBPROTOCOL) + 1
        if position < len(offered) and offered[position]:
            return offered[position]
    return None


class MemberSocket:
    """One member's authenticated socket: a forwarder (outbox hub → client) and a reader (client
    messages → intake) run side by side; when either ends, the other is cancelled."""

    def __init__(
        self, websocket: WebSocket, services: Services, max_bytes: int, principal: Principal, member_id: uuid.UUID
    ) -> None:
        self.websocket = websocket
        self.services = services
        self.max_bytes = max_bytes
        self.principal = principal
        self.member_id = member_id
        # Like SSE without Last-Event-ID: from what the hub had read when the member connected.
        self.connected_at = services.hub.last_id
        # Where the stream starts: decided once, by ?lastEventId, the first message or the wait.
        self.start: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._send_lock = asyncio.Lock()

    @classmethod
    async def open(cls, websocket: WebSocket, services: Services, settings: Settings) -> MemberSocket:
        max_bytes = settings.max_body_bytes
        token = handshake_token(websocket)
        if token is None:
            token = await cls._token_from_first_message(websocket, max_bytes)
        try:
            principal, member_id = await authenticate_member(services, settings, token)
        except Problem as problem:
            log.info("websocket refused: %s", problem.slug)  # the client learns only "invalid token"
            raise CloseConnection(status.WS_1008_POLICY_VIOLATION, "invalid token") from problem
        except DATABASE_UNAVAILABLE as exc:
            log.warning("database unavailable while opening a websocket: %s", exc)
            raise CloseConnection(status.WS_1013_TRY_AGAIN_LATER, "database unavailable") from exc
        socket = cls(websocket, services, max_bytes, principal, member_id)
        try:
            after_id = parse_last_event_id(None, websocket.query_params.get("lastEventId"))
        except Problem as problem:
            await socket.send(FrameError.from_problem(problem).frame.model_dump_json(exclude_none=True))
            raise CloseConnection(status.WS_1008_POLICY_VIOLATION, "invalid lastEventId") from problem
        if after_id is not None:
            socket.start.set_result(after_id)
        await services.intake.start_ahead(member_id)
        return socket

    @staticmethod
    async def _token_from_first_message(websocket: WebSocket, max_bytes: int) -> str:
        try:
            frame = await asyncio.wait_for(receive_frame(websocket, max_bytes), AUTH_TIMEOUT_SECONDS)
            message = parse_client_message(frame)
        except (TimeoutError, FrameError) as exc:
            raise CloseConnection(status.WS_1008_POLICY_VIOLATION, "missing token") from exc
        if not isinstance(message, AuthMessage):
            raise CloseConnection(status.WS_1008_POLICY_VIOLATION, "missing token")
        return message.token

    async def run(self) -> None:
        forward = asyncio.create_task(self._forward(), name=f"ws-forward-{self.member_id}")
        read = asyncio.create_task(self._read(), name=f"ws-read-{self.member_id}")
        # The token's expiry is a timer on a future, not a third task: an open socket holds less.
        expiry = self._expiry()
        tasks: set[asyncio.Future[None]] = {forward, read, expiry}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        errors = [task.exception() for task in done if not task.cancelled()]
        # Both may have ended at once: a deliberate close wins over the other's disconnect.
        error = next((e for e in errors if isinstance(e, CloseConnection)), errors[0] if errors else None)
        if isinstance(error, CloseConnection):
            await close(self.websocket, error.code, error.reason)
        elif isinstance(error, WebSocketDisconnect):
            return  # the client left
        elif error is not None:
            log.error("websocket task failed", exc_info=error)
            await close(self.websocket, status.WS_1011_INTERNAL_ERROR, "internal error")
        else:
            await close(self.websocket, status.WS_1000_NORMAL_CLOSURE, "")

    def _expiry(self) -> asyncio.Future[None]:
        """The token was checked once, at open: the connection ends when the token does, and the
        client reconnects with a fresh one (resuming from its last id). Fails with that close when
        the token expires; never completes for a token without expiry."""
        loop = asyncio.get_running_loop()
        expired: asyncio.Future[None] = loop.create_future()
        if self.principal.expires_at is not None:
            timer = loop.call_later(max(0.0, self.principal.expires_at - time.time()), _close_on_expiry, expired)
            expired.add_done_callback(lambda _: timer.cancel())
        return expired

    async def send(self, text: str) -> None:
        async with self._send_lock:
            await self.websocket.send_text(text)

    async def _forward(self) -> None:
        await asyncio.wait([self.start], timeout=RESUME_WAIT_SECONDS)
        self._decide_start(self.connected_at)
        try:
            # Closed on the way out even when cancelled mid-send, so the hub drops the subscription at once.
            messages = cast(
                AsyncGenerator[StreamMessage | None, None],
                self.services.hub.messages(self.member_id, self.start.result()),
            )
            async with contextlib.aclosing(messages) as stream:
                async for message in stream:
                    if message is None:
                        continue  # no heartbeat asked for: uvicorn pings the socket itself
                    await self.send(json.dumps({"id": message.id, "type": message.kind, "data": message.payload}))
        except SubscriberOverflowError as exc:
            # The client reconnects with its last id and misses nothing.
            raise CloseConnection(
                status.WS_1013_TRY_AGAIN_LATER, "stream fell behind; resume from your last id"
            ) from exc
        except MemberErasedError as exc:
            raise CloseConnection(status.WS_1008_POLICY_VIOLATION, "membership erased") from exc
        except ProcessStoppingError as exc:
            # The client reconnects with ?lastEventId= (to another process) and misses nothing.
            raise CloseConnection(status.WS_1012_SERVICE_RESTART, "service restart") from exc

    async def _read(self) -> None:
        while True:
            frame = await receive_frame(self.websocket, self.max_bytes)
            reply = await self._answer(frame)
            if reply is not None:
                await self.send(reply)

    async def _answer(self, frame: str | bytes) -> str | None:
        try:
            message = parse_client_message(frame)
            if isinstance(message, ResumeMessage):
                self._resume(message)
                return None
            self._decide_start(self.connected_at)
            if isinstance(message, EventMessage):
                return await self._accept(message)
            if isinstance(message, PingMessage):
                return PONG
            raise FrameError.of("already-authenticated", "This connection is already authenticated.")
        except FrameError as error:
            self._decide_start(self.connected_at)  # only a valid first resume picks another start
            return error.frame.model_dump_json(exclude_none=True)

    def _resume(self, message: ResumeMessage) -> None:
        try:
            after_id = parse_last_event_id(None, str(message.after))
        except Problem as problem:
            raise FrameError.from_problem(problem) from problem
        if after_id is None:  # "": no id at all, which only a URL may mean
            raise FrameError.of("invalid-last-event-id", "after must be a non-negative integer id.")
        if self.start.done():
            raise FrameError.of(
                "resume-too-late",
                "resume must be the first message (after auth); reconnect with ?lastEventId= to resume elsewhere.",
            )
        self.start.set_result(after_id)

    def _decide_start(self, after_id: int) -> None:
        if not self.start.done():
            self.start.set_result(after_id)

    async def _accept(self, message: EventMessage) -> str:
        event = event_from_message(message)
        if event.user_id != self.principal.subject:
            raise FrameError.of("not-your-event", "A member may post events only for their own userId.", id=event.id)
        try:
            outcome = await self.services.intake.accept(self.member_id, event, source="member", channel="websocket")
        except Problem as problem:
            raise FrameError.from_problem(problem, event.id) from problem
        except DATABASE_UNAVAILABLE as exc:
            log.warning("database unavailable on a websocket event: %s", exc)
            raise FrameError.of(
                "database-unavailable", "The database is not reachable right now; retry shortly.", id=event.id
            ) from exc
        except Exception as exc:
            log.exception("unhandled error on a websocket event")
            raise FrameError.of("internal", "An unexpected error occurred; it has been logged.", id=event.id) from exc
        return Ack(id=event.id, status=outcome).model_dump_json()


def _close_on_expiry(expired: asyncio.Future[None]) -> None:
    if not expired.done():
        expired.set_exception(CloseConnection(status.WS_1008_POLICY_VIOLATION, "token expired"))


async def receive_frame(websocket: WebSocket, max_bytes: int) -> str | bytes:
    """The next text or binary message; raises WebSocketDisconnect when the client has gone."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text: str | None = message.get("text")
    frame: str | bytes = text if text is not None else message.get("bytes") or b""
    size = len(frame.encode()) if isinstance(frame, str) else len(frame)
    if size > max_bytes:
        raise CloseConnection(status.WS_1009_MESSAGE_TOO_BIG, f"message over {max_bytes} bytes")
    return frame


async def close(websocket: WebSocket, code: int, reason: str) -> None:
    if (
        websocket.application_state is WebSocketState.CONNECTED
        and websocket.client_state is not WebSocketState.DISCONNECTED
    ):
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.close(code, reason)


@router.websocket("/v1/me/ws")
async def member_socket(websocket: WebSocket, services: ServicesDep, settings: SettingsDep) -> None:
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in offered else None)
    try:
        socket = await MemberSocket.open(websocket, services, settings)
    except CloseConnection as closing:
        await close(websocket, closing.code, closing.reason)
        return
    except WebSocketDisconnect:
        return
    except Exception:
        log.exception("could not open a websocket")
        await close(websocket, status.WS_1011_INTERNAL_ERROR, "internal error")
        return
    with connected(services.metrics, "websocket"):
        await socket.run()
