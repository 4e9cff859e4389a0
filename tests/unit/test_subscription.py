"""A stream that falls behind ends instead of skipping a message (it resumes by Last-Event-ID)."""

from __future__ import annotations

import uuid

import pytest

from badges.api import hub
from badges.api.hub import StreamMessage, SubscriberOverflowError, Subscription


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
