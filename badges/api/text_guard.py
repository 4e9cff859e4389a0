"""The door check on text: a request whose path, query or JSON body holds a NUL character or a
lone surrogate, or whose JSON body nests too deeply to read, is answered 422 naming where, before
any route sees it.

PostgreSQL refuses NUL in text and jsonb, and a lone surrogate (which Python's JSON parser makes
of `\\ud800`) cannot be encoded as UTF-8, so such text fails wherever it is first stored or sent:
a 500 in a route, or, once it has crossed into a workflow, an activity retried for ever. Checking
every model's every field is what was forgotten (a consent's `purpose`, a badge's `name`, an
audit filter); this is the one place that covers them all. `eventData` has its own, wider bounds
(`badges/domain/event_data.py`); signed requests (`/v1/integrations/…`, `/v1/webhooks/…`) are
authenticated before their bodies are read, and their models refuse such text themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from badges.api.problems import Problem, problem_response, validation_problem
from badges.domain.event_data import BoundViolation, text_problem, text_violation
from badges.domain.json_input import JSON_LOADS_MAX_DEPTH, JsonTooDeep, parse_json

SIGNED_PREFIXES = ("/v1/integrations/", "/v1/webhooks/")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class StorableText:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        errors = url_errors(scope)
        if errors:
            await validation_problem(Request(scope), errors)(scope, receive, send)
            return
        if not reads_json_body(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
        except Problem as problem:  # the body limit, raised while counting what is read
            response = problem_response(Request(scope), problem.status, problem.detail, problem.slug)
            await response(scope, receive, send)
            return
        body = b"".join(message.get("body", b"") for message in messages if message["type"] == "http.request")
        errors = body_errors(body)
        if errors:
            await validation_problem(Request(scope), errors)(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def reads_json_body(scope: Scope) -> bool:
    """A request whose body FastAPI reads as JSON (no content type, or a JSON one), on a route that
    is not signed."""
    if scope["method"] not in BODY_METHODS or scope["path"].startswith(SIGNED_PREFIXES):
        return False
    content_type = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
    return not content_type or content_type == "application/json" or content_type.endswith("+json")


def url_errors(scope: Scope) -> list[dict[str, str]]:
    """A NUL in the (percent-decoded) path or in a query parameter's name or value. URLs cannot
    carry lone surrogates: invalid UTF-8 in them decodes to U+FFFD."""
    errors = []
    if problem := text_problem(scope["path"]):
        errors.append(error("path", problem, "invalid_text"))
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if problem := text_problem(name) or text_problem(value):
            errors.append(error(f"query.{name.replace(chr(0), '')}", problem, "invalid_text"))
    return errors


def body_errors(body: bytes) -> list[dict[str, str]]:
    """Where in a JSON body text is that cannot be stored, or that it nests too deeply to be read
    (FastAPI's json.loads would recurse to the interpreter's limit); a body that is not JSON is
    left to the route, which answers it as FastAPI does."""
    try:
        document = parse_json(body)
    except JsonTooDeep as too_deep:
        message = f"The body nests {too_deep.depth} levels deep; at most {JSON_LOADS_MAX_DEPTH} are read."
        return [error("body", message, "json_too_deep")]
    except ValueError:
        return []
    violation = text_violation(document)
    return [] if violation is None else [violation_error(violation)]


def violation_error(violation: BoundViolation) -> dict[str, str]:
    return error(dotted("body", violation.path), violation.message, violation.code)


def dotted(prefix: str, path: Iterable[str | int]) -> str:
    return ".".join(str(part) for part in (prefix, *path))


def error(field: str, message: str, type_: str) -> dict[str, str]:
    return {"field": field, "message": message, "type": type_}
