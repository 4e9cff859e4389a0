"""JSON from outside (HTTP bodies, WebSocket frames, provider webhooks) read without recursing
deep in the interpreter: one parser, so every door refuses a document nested too deeply alike."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from pydantic_core import from_json

# json.loads recurses once per level, in the interpreter's own budget (1,000 frames): a document
# at most this deep stays well inside it, whatever the stack already holds.
JSON_LOADS_MAX_DEPTH = 600

# A string, or one left open at the end of the text (json.loads reads the rest as inside it too).
# Without the open case a run of escaped quotes that never closes made every quote start a match
# that scanned to the end and failed: quadratic, tens of seconds for one 64 KB body.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JsonTooDeep(ValueError):
    """The document nests arrays and objects deeper than JSON_LOADS_MAX_DEPTH."""

    def __init__(self, depth: int) -> None:
        super().__init__(f"nested {depth} levels deep; at most {JSON_LOADS_MAX_DEPTH} are read")
        self.depth = depth


def parse_json(document: str | bytes) -> Any:
    """The document's value. pydantic's parser first: it refuses past 200 levels without
    recursing in Python. json.loads recursing thousands of levels deep left the interpreter at its
    recursion limit, where a garbage collection's callback (badges/heap.py) could not run. What
    pydantic refuses (a lone surrogate escape, 200 to 600 levels, text that is not JSON) is read by
    json.loads, as before, only when it nests no deeper than JSON_LOADS_MAX_DEPTH; deeper, it is
    JsonTooDeep. Not JSON: ValueError (JsonTooDeep is one)."""
    try:
        return from_json(document)
    except ValueError:
        pass
    text = document.decode(json.detect_encoding(document), "surrogatepass") if isinstance(document, bytes) else document
    depth = nesting_depth(text)
    if depth > JSON_LOADS_MAX_DEPTH:
        raise JsonTooDeep(depth)
    return json.loads(text)


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in JSON text, brackets inside strings aside (an
    unterminated string runs to the end, as json.loads reads it). No recursion; linear time."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if bracket in "[{" else -1 for bracket in brackets), default=0)
