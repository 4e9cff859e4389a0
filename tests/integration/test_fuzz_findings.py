"""What generated input found (schemathesis in `test_api_fuzz.py`, hypothesis in the verifier and
WebSocket fuzz tests), each pinned by the request that showed it, against the real API, dev
server and PostgreSQL: no 5xx, and every error RFC 9457 problem details as the schema declares."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support import dev_token

pytestmark = pytest.mark.usefixtures("worker")

PROBLEM_JSON = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    if slug is not None:
        assert body["type"] == f"urn:badges:problem:{slug}"


async def staff(client: httpx.AsyncClient) -> dict[str, str]:
    return await dev_token(client, f"staff-{uuid.uuid4()}@example.com", ["admin"])


async def test_the_status_of_a_reevaluation_never_started_is_a_404_problem(client: httpx.AsyncClient) -> None:
    # Was a 500: Temporal's "workflow not found" escaped the route.
    headers = await staff(client)
    never = await client.get("/v1/admin/badges/calculator-explorer/reevaluations/9999", headers=headers)
    assert_problem(never, 404, "reevaluation-not-found")
    # A version is a positive number, as the schema now says.
    assert_problem(await client.get("/v1/admin/badges/calculator-explorer/reevaluations/0", headers=headers), 422)


async def test_a_refused_dev_token_names_the_field_with_a_message(client: httpx.AsyncClient) -> None:
    # Was `errors: [{"field": "body.sub"}]`, which the schema's FieldError (field and message) does not allow.
    refused = await client.post("/v1/dev/token", json={"sub": " ", "scopes": ["user"]})
    assert_problem(refused, 422, "validation-failed")
    assert refused.json()["errors"] == [{"field": "body.sub", "message": "sub must not be empty"}]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/me", "DELETE, GET"),
        ("PATCH", "/v1/me/consent", "GET, PUT"),
        ("OPTIONS", "/v1/admin/integrations", "GET, POST"),
        ("PUT", "/codec/session", "DELETE, POST"),
    ],
)
async def test_a_method_not_allowed_names_every_method_the_path_takes(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    # Was `Allow: GET` for /v1/me: Starlette names only the first route whose path matched.
    headers = await dev_token(client, f"{uuid.uuid4()}@example.com")
    refused = await client.request(method, path, headers=headers)
    assert_problem(refused, 405)
    assert refused.headers["allow"] == allowed
