"""The outbox hub: one LISTEN connection per API process wakes a reader that fans new outbox
rows out to the streams (SSE, WebSocket) of the members they belong to."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

from badges.db.erasure import ERASURE_CHANNEL
from badges.db.outbox import OUTBOX_CHANNEL, last_outbox_id, listening, read_member_outbox, read_outbox

log = logging.getLogger("badges.hub")

READ_BATCH = 1_000
# NOTIFY is only a wake-up; a periodic read covers one lost while the listener reconnects.
POLL_SECONDS = 2.0
SUBSCRIBER_BUFFER = 5_000


@dataclass(frozen=True)
class StreamMessage:
    id: int
    kind: str
    payload: dict[str, Any]


class SubscriberOverflowError(Exception):
    """A stream fell too far behind; the client reconnects with Last-Event-ID and loses nothing."""


class MemberErasedError(Exception):
    """The member was erased while their stream was open: the stream ends, and reconnecting gets 410."""


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class ProcessStoppingError(Exception):
    """This API process is shutting down (a restart): the stream ends with a hint to reconnect, and
    the client resumes from its Last-Event-ID on another process, missing nothing."""


class Subscription:
    """One open stream's messages not yet taken. Held by every connected stream for its whole life,
    so it holds as little as it can while idle: no buffer until a message comes, and one future
    while its reader waits (an `asyncio.Queue` would hold four deques and an event, ~3 KB)."""

    __slots__ = ("_pending", "_waiter", "erased", "overflowed", "start_id", "stopping", "user_id")

    def __init__(self, user_id: uuid.UUID, start_id: int) -> None:
        self.user_id = user_id
        self.start_id = start_id
        self._pending: collections.deque[StreamMessage] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False
        self.erased = False
        self.stopping = False

    def offer(self, message: StreamMessage) -> None:
        if self.overflowed:
            return  # once a message is dropped, later ones would leave a gap behind the client's id
        if self._pending is None:
            self._pending = collections.deque()
        if len(self._pending) >= SUBSCRIBER_BUFFER:
            self.overflowed = True
        else:
            self._pending.append(message)
        self._wake()

    def end_erased(self) -> None:
        self.erased = True
        self._wake()

    def end_stopping(self) -> None:
        self.stopping = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            _wake(self._waiter)

    async def next(self, idle_seconds: float | None = None) -> StreamMessage | None:
        """The next message; None once `idle_seconds` pass without one (time for a heartbeat).
        The wait is a timer on the future, not a cancellation, so it can be used from inside a
        generator without ending it."""
        loop = asyncio.get_running_loop()
        while True:
            if self.erased:
                raise MemberErasedError()
            if self.stopping:  # a message not yet taken is sent again after the reconnect
                raise ProcessStoppingError()
            if self._pending:
                message = self._pending.popleft()
                if not self._pending:
                    self._pending = None  # an idle stream holds no buffer
                return message
            if self.overflowed:
                raise SubscriberOverflowError()
            waiter = self._waiter = loop.create_future()
            timer = None if idle_seconds is None else loop.call_later(idle_seconds, _wake, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if idle_seconds is not None and not self._pending and not (self.erased or self.overflowed or self.stopping):
                return None


class OutboxHub:
    """Also listens for erasures (`ERASURE_CHANNEL`): it ends the erased member's streams and
    calls `on_erasure` callbacks, with which the process forgets what it cached about them; after
    (re)connecting, when notices may have been missed, it calls `on_listening` (forget everything)."""

    def __init__(
        self, pool: AsyncConnectionPool, libpq_url: str, *, on_tail: Callable[[int], None] | None = None
    ) -> None:
        self._pool = pool
        # Told the tail's position after each read (the `badges_outbox_tail_id` gauge).
        self._on_tail = on_tail or (lambda _: None)
        self._libpq_url = libpq_url
        self._subscribers: dict[uuid.UUID, set[Subscription]] = {}
        self.on_erasure: list[Callable[[str], None]] = []
        self.on_listening: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.last_id = 0
        self.stopping = False

    async def start(self) -> None:
        self.last_id = await last_outbox_id(self._pool)
        self._on_tail(self.last_id)
        self._task = asyncio.create_task(self._listen_forever(), name="outbox-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def subscriber_count(self) -> int:
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    def subscribe(self, user_id: uuid.UUID) -> Subscription:
        subscription = Subscription(user_id, self.last_id)
        self._subscribers.setdefault(user_id, set()).add(subscription)
        if self.stopping:
            subscription.end_stopping()
        return subscription

    def end_streams(self) -> None:
        """The process is stopping: every stream ends (and any opened from now on ends at once), so
        its client reconnects to another process."""
        self.stopping = True
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.end_stopping()

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.user_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.user_id]

    async def messages(
        self, user_id: uuid.UUID, after_id: int | None, idle_seconds: float | None = None
    ) -> AsyncIterator[StreamMessage | None]:
        """A member's messages: those after `after_id` from the table, then live ones, each once.

        With no `after_id`, only messages written from now on. With `idle_seconds`, a None each
        time that long passes without a message (the stream's heartbeat).
        """
        subscription = self.subscribe(user_id)
        try:
            cursor = subscription.start_id if after_id is None else after_id
            if after_id is not None:
                async for message in self.backlog(user_id, after_id):
                    cursor = message.id
                    yield message
            while True:
                message = await subscription.next(idle_seconds)
                if message is None:
                    yield None
                elif message.id > cursor:
                    cursor = message.id
                    yield message
        finally:
            self.unsubscribe(subscription)

    async def backlog(self, user_id: uuid.UUID, after_id: int) -> AsyncIterator[StreamMessage]:
        while True:
            rows = await read_member_outbox(self._pool, user_id, after_id, READ_BATCH)
            for row in rows:
                yield StreamMessage(row.id, row.kind, row.payload)
            if len(rows) < READ_BATCH:
                return
            after_id = rows[-1].id

    async def _listen_forever(self) -> None:
        while True:
            try:
                async with listening(self._libpq_url, OUTBOX_CHANNEL, ERASURE_CHANNEL) as conn:
                    for callback in self.on_listening:
                        callback()
                    await self._read_new()  # whatever was written while (re)connecting
                    while True:
                        async for notify in conn.notifies(timeout=POLL_SECONDS, stop_after=1):
                            if notify.channel == ERASURE_CHANNEL:
                                self._erased(notify.payload)
                        await self._read_new()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox listener lost its connection; reconnecting")
                await asyncio.sleep(1.0)

    def _erased(self, owner: str) -> None:
        for callback in self.on_erasure:
            callback(owner)
        with contextlib.suppress(ValueError):
            for subscription in self._subscribers.get(uuid.UUID(owner), ()):
                subscription.end_erased()

    async def _read_new(self) -> None:
        while True:
            rows = await read_outbox(self._pool, self.last_id, READ_BATCH)
            for row in rows:
                self.last_id = row.id
                for subscription in self._subscribers.get(row.user_id, ()):
                    subscription.offer(StreamMessage(row.id, row.kind, row.payload))
            if rows:
                self._on_tail(self.last_id)
            if len(rows) < READ_BATCH:
                return
