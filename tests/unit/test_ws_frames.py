"""A WebSocket frame's JSON is read without recursing thousands of levels deep in the interpreter
(where a garbage collection's callback could not run), and still reads what json.loads read."""

from __future__ import annotations

import json
import sys

import pytest

from badges.api.routes.ws import parse_json


def test_thousands_of_nested_brackets_are_refused_without_recursing_to_the_limit() -> None:
    depth_left = sys.getrecursionlimit()
    with pytest.raises(RecursionError):
        parse_json("[" * 30_000 + "]" * 30_000)

    # Refused by the bracket count, not by the interpreter's limit: it works near that limit too.
    def deep(n: int) -> None:
        if n:
            deep(n - 1)
            return
        with pytest.raises(RecursionError):
            parse_json("[" * 30_000)

    deep(depth_left - 100)


def test_a_few_hundred_levels_and_lone_surrogates_read_as_json_loads_reads_them() -> None:
    nested: dict[str, object] = {}
    for _ in range(400):
        nested = {"a": nested}
    frame = json.dumps(nested)
    assert parse_json(frame) == nested
    assert parse_json('{"note": "\\ud800"}') == {"note": "\ud800"}
    with pytest.raises(ValueError):
        parse_json("{not json")
