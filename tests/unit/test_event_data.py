"""The bounds on an event's `eventData` (and its text fields), at each limit and one past it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from badges.domain import event_data as bounds
from badges.domain.events import RealTimeEvent


def nested(levels: int) -> dict[str, Any]:
    """eventData `levels` objects deep: {"a": {"a": … {}}}."""
    data: dict[str, Any] = {}
    for _ in range(levels - 1):
        data = {"a": data}
    return data


def event(data: Any = None, **fields: Any) -> dict[str, Any]:
    return {
        "id": "e-1",
        "type": "attendance",
        "userId": "member@example.com",
        "eventData": {} if data is None else data,
        "timestamp": "2026-01-01T00:00:00Z",
        **fields,
    }


def refusal(document: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    """Where and why the model refuses `document`, the same from Python and from JSON text."""
    with pytest.raises(ValidationError) as from_python:
        RealTimeEvent.model_validate(document)
    with pytest.raises(ValidationError) as from_json:
        RealTimeEvent.model_validate_json(json.dumps(document))
    [python_error] = from_python.value.errors()
    [json_error] = from_json.value.errors()
    assert (python_error["loc"], python_error["type"]) == (json_error["loc"], json_error["type"])
    return python_error["loc"], python_error["type"]


WITHIN = {
    "depth": nested(bounds.MAX_DEPTH),
    "array depth": {"a": [[[[[[[1]]]]]]]},
    "keys per object": {f"k{i}": i for i in range(bounds.MAX_KEYS_PER_OBJECT)},
    "items per array": {"a": list(range(bounds.MAX_ITEMS_PER_ARRAY))},
    "entries": {f"k{i}": list(range(15)) for i in range(bounds.MAX_ENTRIES // 16)},
    "key length": {"k" * bounds.MAX_KEY_LENGTH: 1},
    "string length": {"s": "é" * bounds.MAX_STRING_LENGTH},
    "numbers": {"big": 2**53 - 1, "small": -(2**53 - 1), "float": 9007199254740991.0, "tiny": 5e-324},
    "unicode": {"emoji": "🎉", "paired surrogates": "\U0001f600", "controls": "\t\n\x01"},
    "scalars": {"t": True, "f": False, "n": None, "z": 0, "x": -0.5},
    "size": {f"k{i}": "x" * 240 for i in range(64)},  # 64 * (240 + 9) bytes: just under 16 KiB
}


@pytest.mark.parametrize("data", WITHIN.values(), ids=WITHIN.keys())
def test_event_data_within_the_bounds_is_accepted_unchanged(data: dict[str, Any]) -> None:
    assert RealTimeEvent.model_validate(event(data)).event_data == data
    assert RealTimeEvent.model_validate_json(json.dumps(event(data))).event_data == data


PAST = {
    "depth": (nested(bounds.MAX_DEPTH + 1), ("eventData", *["a"] * bounds.MAX_DEPTH), "json_too_deep"),
    "197 deep": (nested(197), ("eventData", *["a"] * bounds.MAX_DEPTH), "json_too_deep"),
    "array depth": ({"a": [[[[[[[[1]]]]]]]]}, ("eventData", "a", 0, 0, 0, 0, 0, 0, 0), "json_too_deep"),
    "keys per object": (
        {"o": {f"k{i}": i for i in range(bounds.MAX_KEYS_PER_OBJECT + 1)}},
        ("eventData", "o"),
        "json_too_many_keys",
    ),
    "items per array": ({"a": list(range(bounds.MAX_ITEMS_PER_ARRAY + 1))}, ("eventData", "a"), "json_too_many_items"),
    "entries": (
        {f"k{i}": list(range(16)) for i in range(bounds.MAX_ENTRIES // 16)},
        ("eventData", "k60"),  # 64 keys + 61 arrays of 16 items pass 1,024 entries
        "json_too_many_entries",
    ),
    "key length": ({"o": {"k" * (bounds.MAX_KEY_LENGTH + 1): 1}}, ("eventData", "o"), "json_key_too_long"),
    "string length": ({"s": "x" * (bounds.MAX_STRING_LENGTH + 1)}, ("eventData", "s"), "json_string_too_long"),
    "NUL in a string": ({"s": "a\u0000b"}, ("eventData", "s"), "json_invalid_string"),
    "NUL in a nested string": (
        {"l": [{"s": ["ok", "a\u0000b"]}]},
        ("eventData", "l", 0, "s", 1),
        "json_invalid_string",
    ),
    "NUL in a key": ({"o": {"a\u0000b": 1}}, ("eventData", "o"), "json_invalid_key"),
    "NUL in a top-level key": ({"a\u0000b": 1}, ("eventData",), "json_invalid_key"),
    "integer too large": ({"n": 2**53}, ("eventData", "n"), "json_number_out_of_range"),
    "integer too small": ({"n": -(2**53)}, ("eventData", "n"), "json_number_out_of_range"),
    "huge integer": ({"n": 10**400}, ("eventData", "n"), "json_number_out_of_range"),
    "float too large": ({"n": 1e23}, ("eventData", "n"), "json_number_out_of_range"),
    "NaN": ({"n": float("nan")}, ("eventData", "n"), "json_number_out_of_range"),
    "Infinity": ({"n": [float("-inf")]}, ("eventData", "n", 0), "json_number_out_of_range"),
    "size": ({f"k{i}": "x" * 260 for i in range(64)}, ("eventData",), "json_too_large"),
}


@pytest.mark.parametrize(("data", "where", "why"), PAST.values(), ids=PAST.keys())
def test_event_data_past_a_bound_is_refused_where_it_is(data: dict[str, Any], where: tuple[Any, ...], why: str) -> None:
    assert refusal(event(data)) == (where, why)


@pytest.mark.parametrize(
    ("data", "where", "why"),
    [
        ({"s": "a\ud800b"}, ("eventData", "s"), "json_invalid_string"),
        ({"s": ["\udfff"]}, ("eventData", "s", 0), "json_invalid_string"),
        ({"o": {"\ud83d": 1}}, ("eventData", "o"), "json_invalid_key"),
        ({"t": (1, 2)}, ("eventData", "t"), "json_invalid_value"),
        ({"o": {1: "x"}}, ("eventData", "o"), "json_invalid_key"),
    ],
)
def test_unpaired_surrogates_and_non_json_values_are_refused(
    data: dict[str, Any], where: tuple[Any, ...], why: str
) -> None:
    # JSON text cannot carry these to the model (its parser refuses a lone surrogate escape), but
    # a frame parsed by Python's json module, or a Python caller, can.
    with pytest.raises(ValidationError) as refused:
        RealTimeEvent.model_validate(event(data))
    [error] = refused.value.errors()
    assert (error["loc"], error["type"]) == (where, why)
    assert json.loads(json.dumps({"s": "\ud800"})) == {"s": "\ud800"}  # what the WebSocket's parser lets through


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"id": "a\u0000b"}, ("id",)),
        ({"id": "a\ud800b"}, ("id",)),
        ({"id": "x" * 129}, ("id",)),
        ({"userId": "a\u0000b"}, ("userId",)),
        ({"userId": "a\ud800b"}, ("userId",)),
        ({"userId": "x" * 257}, ("userId",)),
        ({"type": "attendance\u0000"}, ("type",)),
    ],
)
def test_the_events_own_strings_are_bounded_too(fields: dict[str, Any], where: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as refused:
        RealTimeEvent.model_validate(event(**fields))
    assert [error["loc"] for error in refused.value.errors()] == [where]


def test_the_messages_quote_nothing_of_the_input() -> None:
    secret = "s3cr3t\u0000"
    with pytest.raises(ValidationError) as refused:
        RealTimeEvent.model_validate(event({"s": secret}))
    [error] = refused.value.errors()
    assert "s3cr3t" not in error["msg"] and error["input"] is None
