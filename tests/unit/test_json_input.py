"""JSON from outside (WebSocket frames, HTTP bodies, provider webhooks) is read without recursing
thousands of levels deep in the interpreter (where a garbage collection's callback could not run),
and still reads what json.loads read."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from badges.domain.json_input import JSON_LOADS_MAX_DEPTH, JsonTooDeep, nesting_depth, parse_json


def test_thousands_of_nested_brackets_are_refused_without_recursing_to_the_limit() -> None:
    depth_left = sys.getrecursionlimit()
    with pytest.raises(JsonTooDeep):
        parse_json("[" * 30_000 + "]" * 30_000)
    with pytest.raises(JsonTooDeep):
        parse_json(b"[" * 100_000 + b"]" * 100_000)

    # Refused by measuring the depth, not by the interpreter's limit: it works near that limit too.
    def deep(n: int) -> None:
        if n:
            deep(n - 1)
            return
        with pytest.raises(JsonTooDeep):
            parse_json("[" * 30_000)

    deep(depth_left - 100)


def test_a_few_hundred_levels_and_lone_surrogates_read_as_json_loads_reads_them() -> None:
    nested: dict[str, object] = {}
    for _ in range(400):
        nested = {"a": nested}
    frame = json.dumps(nested)
    assert parse_json(frame) == nested
    assert parse_json(frame.encode()) == nested
    assert parse_json('{"note": "\\ud800"}') == {"note": "\ud800"}
    with pytest.raises(ValueError):
        parse_json("{not json")
    with pytest.raises(ValueError):
        parse_json(b"\x80")


def test_many_brackets_side_by_side_are_not_depth() -> None:
    # A lone surrogate (pydantic refuses it) in a body with thousands of shallow brackets is still
    # read, so the text guard can name it; brackets inside strings count for nothing.
    wide = json.dumps({"rows": [[i] for i in range(5_000)], "note": "\ud800", "text": "[[[[" * 1_000})
    assert parse_json(wide)["note"] == "\ud800"
    assert nesting_depth(wide) == 3
    assert nesting_depth('"\\"[[["') == 0
    assert nesting_depth('["unterminated [[[') == 1  # the rest is inside the string, for json.loads too
    assert nesting_depth('[["a\\') == 2


@pytest.mark.timeout(10)
def test_a_run_of_escaped_quotes_that_never_closes_is_measured_in_linear_time() -> None:
    # 64 KB, the default body limit: every quote began a match that scanned to the end (~25 s).
    adversarial = '"' + '\\"' * 32_000
    assert nesting_depth(adversarial) == 0
    assert nesting_depth("[" * 700 + adversarial) == 700
    with pytest.raises(JsonTooDeep):
        parse_json("[" * 700 + adversarial)
    with pytest.raises(JsonTooDeep) as refused:
        parse_json(
            '{"note": "\\ud800", "deep": ' + "[" * (JSON_LOADS_MAX_DEPTH + 1) + "]" * (JSON_LOADS_MAX_DEPTH + 1) + "}"
        )
    assert refused.value.depth == JSON_LOADS_MAX_DEPTH + 2


documents = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)


@pytest.mark.fuzz
@given(document=documents, ensure_ascii=st.booleans())
def test_what_json_loads_reads_reads_the_same(document: object, ensure_ascii: bool) -> None:
    text = json.dumps(document, ensure_ascii=ensure_ascii)
    assert parse_json(text) == json.loads(text)
    if ensure_ascii:  # as bytes, a lone surrogate written unescaped is not UTF-8
        assert parse_json(text.encode()) == json.loads(text.encode())
