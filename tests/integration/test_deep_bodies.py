"""A JSON body nested 100,000 levels deep at each kind of route that reads JSON (a member's events,
an admin route, a signed integration, the provider webhooks) is refused with a problem document:
json.loads recursing to the interpreter's limit (where the GC-pause callback cannot run) answered
400 with FastAPI's words at the routes, and 500 at Yodlee's webhook."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from badges.config import Settings
from badges.domain.json_input import JSON_LOADS_MAX_DEPTH
from tests.integration.test_integrations import admin, post_signed, problem_type, register
from tests.support import dev_token, running_api

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_EVENT = (
    b'{"id": "deep", "type": "tool_usage", "userId": "u", "eventData": '
    + b'{"a": ' * 100_000
    + b"1"
    + b"}" * 100_000
    + b"}"
)


@pytest.fixture
async def roomy(system_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An API whose body limit lets these bodies through (at the default, 64 KiB, they are a 413)."""
    settings = system_settings.model_copy(update={"max_body_bytes": 1024 * 1024})
    async with running_api(settings) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        yield client


async def test_unsigned_json_routes_answer_422_naming_the_body(roomy: httpx.AsyncClient) -> None:
    member = await dev_token(roomy, f"deep-{uuid.uuid4()}")
    staff = await admin(roomy)
    for path, headers, body, content_type in (
        ("/v1/events", member, DEEP, "application/json"),
        ("/v1/events", member, DEEP, None),  # FastAPI reads a body without a content type as JSON
        ("/v1/events", member, DEEP_EVENT, "application/json"),
        ("/v1/admin/integrations", staff, DEEP, "application/json"),
    ):
        sent = headers | ({"content-type": content_type} if content_type else {})
        answer = await roomy.post(path, content=body, headers=sent)
        assert answer.status_code == 422 and problem_type(answer) == "validation-failed", (path, answer.text)
        [error] = answer.json()["errors"]
        assert error["field"] == "body" and error["type"] == "json_too_deep", error
        assert f"at most {JSON_LOADS_MAX_DEPTH}" in error["message"]


async def test_a_signed_integration_answers_422(roomy: httpx.AsyncClient) -> None:
    integration_id, secret = await register(roomy, ["tool_usage"])
    for body in (DEEP, DEEP_EVENT):
        answer = await post_signed(roomy, integration_id, body, secret)
        assert answer.status_code == 422 and problem_type(answer) == "validation-failed", answer.text


async def test_provider_webhooks_answer_401_as_for_any_body_they_cannot_act_on(roomy: httpx.AsyncClient) -> None:
    # Yodlee's notices are unsigned, so the body is read first: json.loads made this a 500.
    yodlee = await roomy.post("/v1/webhooks/yodlee", content=DEEP, headers={"content-type": "application/json"})
    assert yodlee.status_code == 401 and problem_type(yodlee) == "invalid-webhook", yodlee.text
    # Plaid's are verified before the body is read (tests/banking/test_plaid_webhooks.py: a signed one).
    plaid = await roomy.post("/v1/webhooks/plaid", content=DEEP, headers={"content-type": "application/json"})
    assert plaid.status_code == 401 and problem_type(plaid) == "invalid-webhook", plaid.text
