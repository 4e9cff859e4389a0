"""One wire convention: every name a client sends or reads is camelCase (the seed's), except the few
listed here on purpose. Walks the OpenAPI document (every schema's properties, inline or component,
every query, header and cookie parameter) and the WebSocket's frames, which OpenAPI does not describe.
No servers: building the schema needs no lifespan."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter

from badges.api.app import create_app
from badges.api.problems import Problem
from badges.api.routes.ws import Ack, ErrorFrame, FrameError, client_message
from badges.config import Settings

# The deliberate exceptions, each with its reason; docs/api/conventions.md's "Wire names" lists the same.
# Keyed by where the name appears: "Schema.property" or "<in> parameter".
NOT_CAMEL_CASE: dict[str, str] = {
    # POST /v1/dev/token answers an OAuth 2.0 token response (RFC 6749 §5.1), whose names clients know.
    "TokenResponse.access_token": "OAuth 2.0",
    "TokenResponse.token_type": "OAuth 2.0",
    "TokenResponse.expires_in": "OAuth 2.0",
}
# Not in the OpenAPI document, listed for completeness: the WebSocket handshake reads the token from
# `?access_token=` (RFC 6750 §2.3's name), and the export document keeps each section's table and
# column names as stored (it shows what is held, as held).
NOT_CAMEL_CASE_ELSEWHERE = ("ws ?access_token=", "export sections and their rows")

CAMEL_CASE = re.compile(r"[a-z][a-zA-Z0-9]*")
# HTTP's own convention for header names: hyphenated words, never underscores (proxies drop those).
HEADER_NAME = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")


def openapi() -> dict[str, Any]:
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        BADGES_JWT_SECRET="x" * 32,
        BADGES_MASTER_KEYS="k1:" + base64.b64encode(b"k" * 32).decode(),
        BADGES_IDENTITY_PEPPER="p" * 16,
    )
    return create_app(settings).openapi()


def properties(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """(where, property name) for every object schema under `node`, however deeply nested;
    `where` starts with the component's name for component schemas."""
    if isinstance(node, list):
        for child in node:
            yield from properties(child, where)
    if not isinstance(node, dict):
        return
    for key, child in node.items():
        if key == "properties" and isinstance(child, dict):
            for name, schema in child.items():
                yield where, name
                yield from properties(schema, f"{where}.{name}")
        elif key in ("$defs", "schemas") and isinstance(child, dict):
            for name, schema in child.items():
                yield from properties(schema, name)
        else:
            yield from properties(child, where)


def stray(names: Iterator[tuple[str, str]]) -> list[str]:
    found = []
    for where, name in names:
        schema = where.split(".")[0]
        if not CAMEL_CASE.fullmatch(name) and f"{schema}.{name}" not in NOT_CAMEL_CASE:
            found.append(f"{where}: {name}")
    return sorted(set(found))


def test_every_body_in_the_openapi_document_is_camel_case() -> None:
    schema = openapi()
    assert stray(properties(schema["components"], "components")) == []
    for path, operations in schema["paths"].items():
        assert stray(properties(operations, path)) == []  # inline request and response bodies


def test_every_query_header_and_cookie_parameter_is_named_by_the_convention() -> None:
    # Path parameters are exempt: their names are placeholders in the template, never sent.
    wrong = []
    for path, operations in openapi()["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                name, place = parameter["name"], parameter["in"]
                good = HEADER_NAME if place == "header" else CAMEL_CASE
                if place != "path" and not good.fullmatch(name) and f"{place} {name}" not in NOT_CAMEL_CASE:
                    wrong.append(f"{method.upper()} {path}: {place} {name}")
    assert wrong == []


@pytest.mark.parametrize(
    "frame", [client_message, TypeAdapter(Ack), TypeAdapter(ErrorFrame)], ids=["client", "ack", "error"]
)
def test_websocket_frames_are_camel_case(frame: TypeAdapter[BaseModel]) -> None:
    assert stray(properties(frame.json_schema(by_alias=True), "ws")) == []


def test_problem_extension_members_are_camel_case_over_http_and_websocket() -> None:
    problem = Problem(429, "rate-limited", "Too many events.", retry_after=7)
    assert problem.extensions == {"retryAfter": 7}
    frame = json.loads(FrameError.from_problem(problem, "e-1").frame.model_dump_json(exclude_none=True))
    assert frame == {
        "type": "error",
        "code": "rate-limited",
        "detail": "Too many events.",
        "id": "e-1",
        "retryAfter": 7,
    }


def test_the_exceptions_are_still_there() -> None:
    """An exception that no longer occurs is taken off the list, so the list stays true."""
    schemas = openapi()["components"]["schemas"]
    for where in NOT_CAMEL_CASE:
        schema, _, name = where.partition(".")
        assert name in schemas[schema]["properties"], where
