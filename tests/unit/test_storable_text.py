"""`text_violation`, what the API's door check (`badges/api/text_guard.py`) runs on every JSON
body: generated documents of storable text pass; one NUL or lone surrogate put anywhere, in a
string or a key, is found where it was put, and that path names only valid keys."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from badges.domain.event_data import text_violation

pytestmark = pytest.mark.fuzz

storable_char = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
storable_text = st.text(storable_char, max_size=8)
documents = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), storable_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(storable_text, inner, max_size=4)),
    max_leaves=20,
)
bad_text = st.one_of(
    st.builds(lambda a, b: f"{a}\x00{b}", storable_text, storable_text),
    st.builds(
        lambda a, s, b: f"{a}{s}{b}",
        storable_text,
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
        storable_text,
    ),
)


@given(document=documents)
def test_storable_text_passes(document: Any) -> None:
    assert text_violation(document) is None


def containers(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every list and object in `document`, with its path."""
    found: list[tuple[tuple[Any, ...], Any]] = []
    if isinstance(document, dict | list):
        found.append((path, document))
        items = document.items() if isinstance(document, dict) else enumerate(document)
        for key, item in items:
            found.extend(containers(item, (*path, key)))
    return found


@given(
    document=st.one_of(
        st.lists(documents, min_size=1, max_size=3), st.dictionaries(storable_text, documents, min_size=1)
    ),
    bad=bad_text,
    as_key=st.booleans(),
    data=st.data(),
)
def test_one_bad_string_or_key_is_found_where_it_is(document: Any, bad: str, as_key: bool, data: st.DataObject) -> None:
    path, container = data.draw(st.sampled_from(containers(document)))
    if isinstance(container, dict) and as_key:
        container[bad] = 1
        expected, code = path, "json_invalid_key"
    elif isinstance(container, dict):
        key = data.draw(storable_text.filter(lambda key: key not in container))
        container[key] = bad
        expected, code = (*path, key), "json_invalid_string"
    else:
        container.append(bad)
        expected, code = (*path, len(container) - 1), "json_invalid_string"
    violation = text_violation(document)
    assert violation is not None
    assert (violation.path, violation.code) == (expected, code)


@pytest.mark.parametrize(
    ("document", "path", "code"),
    [
        ({"a": [1, {"b": "x\x00"}]}, ("a", 1, "b"), "json_invalid_string"),
        ({"a": {"\ud800": 1}}, ("a",), "json_invalid_key"),
        ("\udfff", (), "json_invalid_string"),
        ({"ok": "\U0001f600", "then": ["\x01\t"]}, None, None),
    ],
)
def test_examples(document: Any, path: tuple[Any, ...] | None, code: str | None) -> None:
    violation = text_violation(document)
    if path is None:
        assert violation is None
    else:
        assert violation is not None and (violation.path, violation.code) == (path, code)
