"""The bounds on what an event carries: every `eventData` the API accepts is one that Temporal's
payload converter encodes and decodes, and PostgreSQL's jsonb stores, unchanged.

Without them a member could send what passes intake but breaks later, out of the sender's sight:
nesting past ~200 levels that the worker cannot decode (the event is lost), a NUL character that
jsonb refuses (a held burst that can never be written stops the member's workflow), numbers that
come back as other numbers. The bounds are those of I-JSON (RFC 7493: valid Unicode, numbers
that are exact as IEEE doubles) plus sizes far above what any event system sends and far below
what breaks anything: a rule reads a key or two of `eventData`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

# A container inside eventData counts one level more than its parent; eventData itself is level 1.
MAX_DEPTH = 8
MAX_KEYS_PER_OBJECT = 64
MAX_ITEMS_PER_ARRAY = 256
# Keys of every object plus items of every array, the whole document through.
MAX_ENTRIES = 1024
MAX_KEY_LENGTH = 128  # characters
MAX_STRING_LENGTH = 4096  # characters
MAX_SERIALIZED_BYTES = 16 * 1024  # compact JSON, UTF-8
# Integers and floats beyond this are not exact as IEEE doubles (RFC 7493 §2.2), and jsonb
# answers large floats as integers.
MAX_SAFE_NUMBER = 2**53 - 1

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class BoundViolation:
    """Why a value is refused: where (keys and indexes below `eventData`), a stable code, and a
    message that does not quote the input."""

    path: Path
    code: str
    message: str


def text_problem(text: str) -> str | None:
    """What makes `text` unstorable (a NUL, which jsonb and PostgreSQL text refuse; a lone
    surrogate, which is not Unicode and cannot be encoded as UTF-8), or None."""
    if "\x00" in text:
        return "must not contain the NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain unpaired surrogates (U+D800 to U+DFFF)"
    return None


def event_data_violation(data: dict[str, Any]) -> BoundViolation | None:
    """The first place where `data` breaks a bound, or None when it is within all of them.

    Walks the document without recursion, checking an object's keys before entering its values,
    so the path of a violation names only keys that are themselves valid.
    """
    entries = 0
    pending: list[tuple[Any, Path, int]] = [(data, (), 1)]
    while pending:
        value, path, depth = pending.pop()
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                return BoundViolation(path, "json_too_deep", f"is nested deeper than {MAX_DEPTH} levels")
            if len(value) > MAX_KEYS_PER_OBJECT:
                return BoundViolation(path, "json_too_many_keys", f"has more than {MAX_KEYS_PER_OBJECT} keys")
            entries += len(value)
            if entries > MAX_ENTRIES:
                return BoundViolation(path, "json_too_many_entries", f"eventData has more than {MAX_ENTRIES} entries")
            for key in value:
                if not isinstance(key, str):
                    return BoundViolation(path, "json_invalid_key", "has a key that is not a string")
                if len(key) > MAX_KEY_LENGTH:
                    return BoundViolation(
                        path, "json_key_too_long", f"has a key longer than {MAX_KEY_LENGTH} characters"
                    )
                if problem := text_problem(key):
                    return BoundViolation(path, "json_invalid_key", f"has a key that {problem}")
            pending.extend((item, (*path, key), depth + 1) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                return BoundViolation(path, "json_too_deep", f"is nested deeper than {MAX_DEPTH} levels")
            if len(value) > MAX_ITEMS_PER_ARRAY:
                return BoundViolation(path, "json_too_many_items", f"has more than {MAX_ITEMS_PER_ARRAY} items")
            entries += len(value)
            if entries > MAX_ENTRIES:
                return BoundViolation(path, "json_too_many_entries", f"eventData has more than {MAX_ENTRIES} entries")
            pending.extend((item, (*path, index), depth + 1) for index, item in reversed(list(enumerate(value))))
        elif isinstance(value, str):
            if len(value) > MAX_STRING_LENGTH:
                return BoundViolation(path, "json_string_too_long", f"is longer than {MAX_STRING_LENGTH} characters")
            if problem := text_problem(value):
                return BoundViolation(path, "json_invalid_string", problem)
        elif value is None or isinstance(value, bool):
            continue
        elif isinstance(value, int | float):
            # An int is compared as it is: math.isfinite cannot convert one past the float range.
            if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_SAFE_NUMBER:
                return BoundViolation(
                    path, "json_number_out_of_range", "must be a finite number of magnitude at most 2^53 - 1"
                )
        else:
            return BoundViolation(path, "json_invalid_value", "is not a JSON value")
    size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_SERIALIZED_BYTES:
        return BoundViolation((), "json_too_large", f"is larger than {MAX_SERIALIZED_BYTES} bytes as JSON")
    return None


def text_violation(document: Any) -> BoundViolation | None:
    """The first key or string anywhere in a JSON document that `text_problem` refuses, or None.

    Every text the API takes ends up in PostgreSQL (which refuses NUL) or in UTF-8 (which cannot
    encode a lone surrogate), and Python's JSON parser lets both through (`\\u0000`, `\\ud800`).
    Paths name a string where it is and a bad key by the object that holds it, as
    `event_data_violation` does; walked without recursion, in document order.
    """
    pending: list[tuple[Any, Path]] = [(document, ())]
    while pending:
        value, path = pending.pop()
        if isinstance(value, dict):
            for key in value:
                if isinstance(key, str) and (problem := text_problem(key)):
                    return BoundViolation(path, "json_invalid_key", f"has a key that {problem}")
            pending.extend((item, (*path, key)) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend((item, (*path, index)) for index, item in reversed(list(enumerate(value))))
        elif isinstance(value, str) and (problem := text_problem(value)):
            return BoundViolation(path, "json_invalid_string", problem)
    return None
