"""Generated `eventData`: what is within the bounds the model accepts, Temporal's payload round trip
(the project's converter: pydantic JSON, then the member's encryption) gives back unchanged, and
the store of held events (a sealed row in PostgreSQL, read back in a page) gives back unchanged;
what is past a bound the model refuses, naming where.

The bounds are in badges/domain/event_data.py; these strategies are written from docs/api/conventions.md's
statement of them, not from that code, so a bound the validator forgets to enforce, or one that
lets through what the worker or the store cannot take, is found here."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.converter import DataConverter, WorkflowSerializationContext

from badges.db.keys import KeyStore
from badges.db.progress import write_member_batch
from badges.db.reviews import HeldEvents, held_events_page
from badges.domain.events import BadgeEvent, RealTimeEvent
from tests.conftest import create_member

MAX_DEPTH = 8
MAX_KEYS_PER_OBJECT = 64
MAX_ITEMS_PER_ARRAY = 256
MAX_ENTRIES = 1024
MAX_KEY_LENGTH = 128
MAX_STRING_LENGTH = 4096
MAX_SERIALIZED_BYTES = 16 * 1024
MAX_SAFE_NUMBER = 2**53 - 1

PROPERTIES = settings(
    max_examples=200,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

# Every Unicode scalar value but NUL: all planes, controls, noncharacters, paired surrogates
# (as the astral characters they encode), but never a lone surrogate (category Cs).
storable_char = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
keys = st.text(storable_char, max_size=MAX_KEY_LENGTH).filter(lambda key: len(key) <= MAX_KEY_LENGTH)
strings = st.one_of(
    st.text(storable_char, max_size=40),
    st.text(storable_char, min_size=MAX_STRING_LENGTH - 2, max_size=MAX_STRING_LENGTH),
)
numbers = st.one_of(
    st.integers(min_value=-MAX_SAFE_NUMBER, max_value=MAX_SAFE_NUMBER),
    st.sampled_from([MAX_SAFE_NUMBER, -MAX_SAFE_NUMBER, 0, -0.0, 5e-324, 1e-7, 0.1, 2.0**52 + 0.5]),
    st.floats(min_value=-MAX_SAFE_NUMBER, max_value=MAX_SAFE_NUMBER, allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, strings)


def json_values(levels: int) -> st.SearchStrategy[Any]:
    """A JSON value whose containers nest at most `levels` deep."""
    if levels == 0:
        return scalars
    inner = st.deferred(lambda: json_values(levels - 1))
    return st.one_of(
        scalars,
        st.lists(inner, max_size=6),
        st.dictionaries(keys, inner, max_size=6),
    )


def chain(levels: int, leaf: Any) -> dict[str, Any]:
    """eventData exactly `levels` containers deep around `leaf`, alternating objects and arrays."""
    value = leaf
    for level in range(levels - 1, 0, -1):
        value = [value] if level % 2 else {"k": value}
    return {"k": value}


def entries(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(entries(item) for item in value.values())
    if isinstance(value, list):
        return len(value) + sum(entries(item) for item in value)
    return 0


def within_size(data: dict[str, Any]) -> bool:
    encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return entries(data) <= MAX_ENTRIES and len(encoded) <= MAX_SERIALIZED_BYTES


event_data_within = st.one_of(
    st.dictionaries(keys, json_values(MAX_DEPTH - 1), max_size=8),
    st.dictionaries(keys, json_values(MAX_DEPTH - 1), min_size=MAX_KEYS_PER_OBJECT, max_size=MAX_KEYS_PER_OBJECT),
    st.lists(numbers, min_size=MAX_ITEMS_PER_ARRAY, max_size=MAX_ITEMS_PER_ARRAY).map(lambda items: {"items": items}),
    scalars.map(lambda leaf: chain(MAX_DEPTH, leaf)),
).filter(within_size)


def wire_event(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "gen-1",
        "type": "attendance",
        "userId": "member@example.com",
        "eventData": data,
        "timestamp": "2026-01-01T00:00:00Z",
    }


@pytest.fixture(scope="module")
async def member_context(engine: AsyncEngine, keys: KeyStore) -> WorkflowSerializationContext:
    """The serialization context of a member's badge workflow: payloads sealed with their key."""
    member_id = await create_member(engine, keys)
    return WorkflowSerializationContext(namespace="default", workflow_id=f"user/{member_id}/badges")


@PROPERTIES
@given(data=event_data_within)
async def test_event_data_within_the_bounds_is_accepted_decoded_and_stored_unchanged(
    data: dict[str, Any],
    data_converter: DataConverter,
    member_context: WorkflowSerializationContext,
    pool: AsyncConnectionPool,
    keys: KeyStore,
) -> None:
    # (a) Intake: both parsers the surfaces use (REST and WebSocket read JSON with Python's json
    # module, then validate; signed integrations validate the JSON text itself).
    text = json.dumps(wire_event(data))
    from_python = RealTimeEvent.model_validate(json.loads(text))
    from_json = RealTimeEvent.model_validate_json(text)
    assert from_python.event_data == data and from_json.event_data == data

    # (b) The signal the API sends the member's workflow, through the converter and codec.
    event = BadgeEvent.from_wire(from_python).model_copy(
        update={"local_date": date(2026, 1, 1), "received_at": datetime.now(UTC), "catalogue_revision": 1}
    )
    converter = data_converter.with_context(member_context)
    [decoded] = await converter.decode(await converter.encode([event]), [BadgeEvent])
    assert decoded == event and decoded.event_data == data

    # (c) What a held burst stores and hands back on approval: the event sealed with the member's
    # key in its own review_events row, read back through a page of held events.
    member = uuid.UUID(member_context.workflow_id.split("/")[1])
    review_id = str(uuid.uuid4())
    sealed = await keys.seal(str(member), event.model_dump_json().encode())
    held = HeldEvents(review_id, "attendance", "burst", [(event.id, sealed)])
    await write_member_batch(pool, member, 1, [], [], held=[held])
    page = await held_events_page(pool, keys, member, review_id, 0, max_events=10, max_bytes=1 << 20)
    [stored] = [BadgeEvent.model_validate_json(text) for text in page.events]
    assert stored == event and stored.event_data == data


# --- past the bounds ------------------------------------------------------------------------

bad_text = st.one_of(
    st.builds(lambda a, b: f"{a}\x00{b}", st.text(storable_char, max_size=5), st.text(storable_char, max_size=5)),
    st.builds(
        lambda a, s, b: f"{a}{s}{b}",
        st.text(storable_char, max_size=5),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
        st.text(storable_char, max_size=5),
    ),
)
out_of_range = st.one_of(
    st.integers(min_value=MAX_SAFE_NUMBER + 1),
    st.integers(max_value=-MAX_SAFE_NUMBER - 1),
    st.floats(min_value=MAX_SAFE_NUMBER + 1, exclude_min=True),
    st.floats(max_value=-MAX_SAFE_NUMBER - 1, exclude_max=True),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 10**400]),
)
violations = st.one_of(
    st.integers(min_value=MAX_DEPTH + 1, max_value=400).map(lambda levels: chain(levels, 1)),
    bad_text.map(lambda text: {"value": text}),
    bad_text.map(lambda text: {"nested": [{text: 1}]}),
    out_of_range.map(lambda number: {"n": [number]}),
    st.text(storable_char, min_size=MAX_KEY_LENGTH + 1, max_size=MAX_KEY_LENGTH + 40).map(lambda key: {key: 1}),
    st.text(storable_char, min_size=MAX_STRING_LENGTH + 1, max_size=MAX_STRING_LENGTH + 40).map(lambda s: {"s": s}),
    st.integers(MAX_KEYS_PER_OBJECT + 1, 200).map(lambda n: {"o": {f"k{i}": i for i in range(n)}}),
    st.integers(MAX_ITEMS_PER_ARRAY + 1, 600).map(lambda n: {"a": list(range(n))}),
    st.integers(MAX_ENTRIES // 64 + 1, 64).map(lambda n: {f"k{i}": list(range(64)) for i in range(n)}),
    st.integers(MAX_SERIALIZED_BYTES // 64 + 1, 1000).map(lambda n: {f"k{i}": "x" * n for i in range(64)}),
)


@PROPERTIES
@given(data=violations, host=st.dictionaries(keys, json_values(2), max_size=3))
def test_event_data_past_a_bound_is_refused_where_it_is(data: dict[str, Any], host: dict[str, Any]) -> None:
    # The violation sits beside arbitrary valid data, which must not hide it.
    assume(not set(host) & set(data))
    document = wire_event({**host, **data})
    with pytest.raises(ValidationError) as refused:
        RealTimeEvent.model_validate(document)
    [error] = refused.value.errors()
    assert error["loc"][0] == "eventData" and error["type"].startswith("json_")
    assert error["input"] is None
