"""Every payload converter in a process reads with the same type adapters: the SDK makes one
converter per cached workflow run, and an adapter each would be validators that every full
garbage collection walks."""

from __future__ import annotations

import uuid

from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter

from badges.domain.events import BadgeEvent
from badges.messages.user_badges import UserBadgesInput
from badges.temporal.converter import SealedPayloadConverter, SharedAdaptersJSONConverter, shared_type_adapter


def test_converters_made_for_two_runs_read_with_one_adapter_per_type() -> None:
    first, second = SealedPayloadConverter(), SealedPayloadConverter()
    json_converters = [
        c for converter in (first, second) for c in converter.converters.values()
        if isinstance(c, PydanticJSONPlainPayloadConverter)
    ]  # fmt: skip
    assert len(json_converters) == 2 and all(isinstance(c, SharedAdaptersJSONConverter) for c in json_converters)
    shared_type_adapter.cache_clear()
    value = UserBadgesInput(user_id=uuid.uuid4())
    payload = first.to_payloads([value])[0]
    assert first.from_payloads([payload], [UserBadgesInput]) == [value]
    assert second.from_payloads([payload], [UserBadgesInput]) == [value]
    info = shared_type_adapter.cache_info()
    assert (info.misses, info.hits) == (1, 1)  # the second run's read found the first one's adapter


def test_values_still_round_trip_with_and_without_a_type_hint() -> None:
    converter = SealedPayloadConverter()
    event = BadgeEvent.model_validate(
        {"id": "e1", "type": "tool_usage", "userId": "m1", "timestamp": "2026-12-07T10:00:00+00:00", "eventData": {}}
    )
    payloads = converter.to_payloads([event, {"a": [1, 2]}, [1, "x"]])
    assert converter.from_payloads(payloads[:1], [BadgeEvent]) == [event]
    assert converter.from_payloads(payloads[1:]) == [{"a": [1, 2]}, [1, "x"]]
    assert converter.from_payloads(payloads[2:], [list[int | str]]) == [[1, "x"]]


def test_converters_made_for_each_activation_share_the_processs_encoding_converters() -> None:
    # The SDK makes a payload converter for every activation of a cached run: it is only a table
    # of the same converters, not a new JSON converter (and pydantic-core serializer) each time.
    first, second = SealedPayloadConverter(), SealedPayloadConverter()
    assert first.converters.keys() == second.converters.keys()
    assert all(first.converters[encoding] is second.converters[encoding] for encoding in first.converters)
    assert b"binary/refused" in first.converters
