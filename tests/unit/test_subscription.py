"""A stream that falls behind ends instead of skipping a message (it resumes by Last-Event-ID); the
streams of a process that stops end, those waiting and those opened afterwards."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from badges.api import hub
from badges.api.hub import (
    MemberErasedError,
    OutboxHub,
    ProcessStoppingError,
    StreamMessage,
    SubscriberOverflowError,
    Subscription,
)


async def test_after_an_overflow_nothing_later_is_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "SUBSCRIBER_BUFFER", 3)
    subscription = Subscription(uuid.uuid4(), start_id=0)
    for message_id in range(1, 5):  # 4 does not fit
        subscription.offer(StreamMessage(message_id, "progress", {}))
    delivered = [(await subscription.next()).id]
    subscription.offer(StreamMessage(5, "progress", {}))  # room again, but 4 was dropped
    delivered += [(await subscription.next()).id, (await subscription.next()).id]
    with pytest.raises(SubscriberOverflowError):
        await subscription.next()
    assert delivered == [1, 2, 3]


async def test_a_stopping_process_ends_every_stream_waiting_and_any_opened_later() -> None:
    outbox = OutboxHub(pool=None, libpq_url="")  # type: ignore[arg-type] - neither is used here
    member = uuid.uuid4()
    waiting = outbox.subscribe(member)
    waiter = asyncio.create_task(waiting.next())
    await asyncio.sleep(0)
    outbox.end_streams()
    with pytest.raises(ProcessStoppingError):
        await waiter
    later = outbox.subscribe(member)
    later.offer(StreamMessage(1, "progress", {}))
    with pytest.raises(ProcessStoppingError):
        await later.next()


async def test_a_waiting_reader_is_woken_by_a_message_and_an_idle_stream_holds_no_buffer() -> None:
    subscription = Subscription(uuid.uuid4(), start_id=0)
    reader = asyncio.create_task(subscription.next())
    await asyncio.sleep(0)
    subscription.offer(StreamMessage(1, "progress", {}))
    assert (await reader).id == 1
    # What an open stream holds while idle: no buffer, no waiter once it has its message.
    assert subscription._pending is None and subscription._waiter is None
    assert not hasattr(subscription, "__dict__")


async def test_an_erasure_wakes_a_waiting_reader_and_ends_the_stream() -> None:
    subscription = Subscription(uuid.uuid4(), start_id=0)
    reader = asyncio.create_task(subscription.next())
    await asyncio.sleep(0)
    subscription.end_erased()
    with pytest.raises(MemberErasedError):
        await reader
