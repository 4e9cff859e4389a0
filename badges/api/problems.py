"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field
from pydantic.alias_generators import to_camel
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from badges.domain.definitions import SpecFieldError

PROBLEM_JSON = "application/problem+json"
# What "the database is not reachable" looks like from each layer; HTTP answers 503, WebSocket an error frame.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    PoolTimeout,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)
log = logging.getLogger("badges.api")


class Problem(StarletteHTTPException):
    """An error the caller can act on: a status, a stable type slug and a human detail.

    An HTTPException, so that FastAPI passes it through untouched even from body reading.
    Extension members are camelCase on the wire like every body (`retry_after=` is answered as
    `retryAfter`), in problem details and in WebSocket error frames alike.
    """

    def __init__(
        self, status: int, slug: str, detail: str, headers: dict[str, str] | None = None, **extensions: Any
    ) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.extensions = {to_camel(name): value for name, value in extensions.items()}


def problem_response(
    request: Request,
    status: int,
    detail: str,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:badges:problem:{slug}" if slug else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extensions,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def validation_problem(request: Request, errors: list[dict[str, str]]) -> JSONResponse:
    """The 422 for invalid input: `errors` holds each `field` (e.g. `body.scopes`), a `message` and a `type`."""
    fields = ", ".join(error["field"] for error in errors)
    return problem_response(request, 422, f"The request is not valid: {fields}", "validation-failed", errors=errors)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.detail, exc.slug, headers=exc.headers, **exc.extensions)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405 and (methods := allowed_methods(request)):
            headers = {**(headers or {}), "Allow": ", ".join(methods)}
        return problem_response(request, exc.status_code, detail, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{**_field_and_message(error), "type": error["type"]} for error in exc.errors()]
        return validation_problem(request, errors)

    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return problem_response(
            request,
            503,
            "The database is not reachable right now; retry shortly.",
            "database-unavailable",
            headers={"Retry-After": "2"},
        )

    for error_type in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error_type, _database_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "An unexpected error occurred; it has been logged.", "internal")


def _field_and_message(error: Any) -> dict[str, str]:
    """Where a validation error is and what it says; a check across fields that names the field to
    fix (`SpecFieldError`, e.g. an improvement badge without `config.behaviorTracking`) is reported
    at that field, with its own message, not at the model that ran the check."""
    field = ".".join(str(part) for part in error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, SpecFieldError):
        return {"field": f"{field}.{cause.field}" if field else cause.field, "message": str(cause)}
    return {"field": field, "message": error["msg"]}


def allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI document gives this path. Starlette's 405 names only the methods of
    the first route whose path matched, and each method of a path is its own route here; RFC 9110
    (§15.5.6) wants them all in `Allow`."""
    paths: list[tuple[re.Pattern[str], list[str]]] | None = getattr(request.app.state, "allowed_methods", None)
    if paths is None:
        paths = [
            (compile_path(path)[0], sorted(method.upper() for method in operations))
            for path, operations in request.app.openapi().get("paths", {}).items()
        ]
        request.app.state.allowed_methods = paths
    return next((methods for pattern, methods in paths if pattern.match(request.scope["path"])), [])


class BodyLimit:
    """Refuses request bodies over the limit with a 413 problem.

    A declared Content-Length over the limit is answered before the body is read; a body sent
    without one (chunked) is counted as it is read, and reading stops with a 413 at the limit.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            response = problem_response(Request(scope), 413, self._detail, "body-too-large")
            await response(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise Problem(413, "body-too-large", self._detail)
            return message

        await self.app(scope, counted_receive, send)

    @property
    def _detail(self) -> str:
        return f"The body is over the limit of {self.max_body_bytes} bytes."


class FieldError(BaseModel):
    field: str  # where, e.g. body.scopes.open_banking.expiresAt or query.after
    message: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, as every error of this API is answered."""

    type: str = Field(examples=["urn:badges:problem:consent-required"])
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | None = None  # for 422: each field that is wrong
    retryAfter: int | None = None  # for 429: seconds until another is let through, as `Retry-After` says


def problem_openapi(app: FastAPI) -> None:
    """Declare errors as they are answered: every operation's 422, and a default for the other
    4xx/5xx, as `application/problem+json` with the `ProblemDetails` schema (FastAPI's own
    schema would describe a body this API never sends)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ProblemDetails"] = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(components["ProblemDetails"].pop("$defs", {}))
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {
                        "description": "The request is not valid: `errors` names each field",
                        "content": problem,
                    }
                responses.setdefault("default", {"description": "An error, as problem details", "content": problem})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
