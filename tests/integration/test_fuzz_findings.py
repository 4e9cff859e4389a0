"""What generated input found (schemathesis in `test_api_fuzz.py`, hypothesis in the verifier and
WebSocket fuzz tests), each pinned by the request that showed it, against the real API, dev
server and PostgreSQL: no 5xx, and every error RFC 9457 problem details as the schema declares."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support import dev_token, eventually

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


# --- text that PostgreSQL or UTF-8 cannot hold, anywhere in a request -------------------------

NUL_IN_URLS = [
    ("/v1/admin/audit?actor=a%00b", "query.actor"),
    ("/v1/admin/audit?action=%00", "query.action"),
    ("/v1/admin/webhook-deliveries?badgeId=%00", "query.badgeId"),
    ("/v1/admin/badges/a%00b/versions", "path"),
]


@pytest.mark.parametrize(("url", "field"), NUL_IN_URLS, ids=[field for _, field in NUL_IN_URLS])
async def test_a_nul_in_the_url_is_a_422_naming_where(client: httpx.AsyncClient, url: str, field: str) -> None:
    # Each was a 500: PostgreSQL refuses NUL in text.
    refused = await client.get(url, headers=await staff(client))
    assert_problem(refused, 422, "validation-failed")
    assert [error["field"] for error in refused.json()["errors"]] == [field]


def badge(name: str, **rule: object) -> dict[str, object]:
    return {"name": name, "rule": {"kind": "count", "eventType": "tool_usage", "target": 3, **rule}}


async def test_text_that_cannot_be_stored_in_a_body_is_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    headers = await staff(client)
    badge_id = f"b-{uuid.uuid4().hex[:12]}"
    for text, problem in (("a\u0000b", "NUL"), ("a\ud800b", "surrogate")):
        # Written as Python's json module writes it (escapes kept), as any client may send it.
        body = json.dumps(badge(text)).encode()
        refused = await client.put(
            f"/v1/admin/badges/{badge_id}", content=body, headers={**headers, "content-type": "application/json"}
        )
        assert_problem(refused, 422, "validation-failed")  # was a 500 for both
        [error] = refused.json()["errors"]
        assert error["field"] == "body.name" and problem in error["message"]
    nul_key = json.dumps(
        {"scopes": {"demographics": {"purpose": "p", "expiresAt": "2030-01-01T00:00:00Z"}}, "\u0000": 1}
    )
    member = await dev_token(client, f"{uuid.uuid4()}@example.com")
    refused = await client.put(
        "/v1/me/consent", content=nul_key.encode(), headers={**member, "content-type": "application/json"}
    )
    assert_problem(refused, 422, "validation-failed")
    assert [error["field"] for error in refused.json()["errors"]] == ["body"]


async def test_a_consent_purpose_with_a_nul_is_refused_and_later_changes_still_apply(
    client: httpx.AsyncClient,
) -> None:
    # Was answered 202, and then the consent workflow's activity failed for ever (jsonb refuses
    # NUL): the grant never applied, and neither did any change after it.
    member = await dev_token(client, f"{uuid.uuid4()}@example.com")
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    poisoned = {"scopes": {"demographics": {"purpose": "a\u0000b", "expiresAt": expires}}}
    refused = await client.put("/v1/me/consent", json=poisoned, headers=member)
    assert_problem(refused, 422, "validation-failed")
    assert [error["field"] for error in refused.json()["errors"]] == ["body.scopes.demographics.purpose"]
    grant = {"scopes": {"demographics": {"purpose": "peer groups", "expiresAt": expires}}}
    assert (await client.put("/v1/me/consent", json=grant, headers=member)).status_code == 202

    async def granted() -> bool:
        scopes = (await client.get("/v1/me/consent", headers=member)).json()["scopes"]
        return scopes.get("demographics", {}).get("status") == "active"

    await eventually(granted)


# --- numbers past what is stored, and numbers where dates belong ------------------------------


async def test_numbers_past_what_a_column_holds_are_refused(client: httpx.AsyncClient) -> None:
    headers = await staff(client)
    for limit in (2**63, 2**53, False, "5"):
        # 2**63 was a 500 (bigint overflow); `false` and "5" were taken as 0 and 5.
        budget = {"kind": "points", "monthlyLimit": limit, "policy": "defer"}
        refused = await client.put(f"/v1/admin/reward-budgets/b-{uuid.uuid4().hex[:8]}", json=budget, headers=headers)
        assert_problem(refused, 422, "validation-failed")
        assert [error["field"] for error in refused.json()["errors"]] == ["body.monthlyLimit"]
    refused = await client.get(f"/v1/admin/audit?afterId={2**63}", headers=headers)  # was a 500
    assert_problem(refused, 422, "validation-failed")


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/v1/admin/audit?until=0.5", "query.until"),
        ("/v1/admin/audit?since=20260101", "query.since"),
        ("/v1/admin/audit?since=2026-01-01T00:00:00", "query.since"),  # no offset: whose midnight?
        ("/v1/me/transactions?until=0", "query.until"),
    ],
)
async def test_a_number_or_a_time_without_its_offset_is_not_a_date(
    client: httpx.AsyncClient, url: str, field: str
) -> None:
    # Were answered 200: pydantic reads numbers as Unix time (`20260101` is a day in August 1970).
    headers = await staff(client) if "/admin/" in url else await dev_token(client, f"{uuid.uuid4()}@example.com")
    refused = await client.get(url, headers=headers)
    assert_problem(refused, 422, "validation-failed")
    assert [error["field"] for error in refused.json()["errors"]] == [field]


async def test_a_badge_matching_event_data_past_its_bounds_is_refused(client: httpx.AsyncClient) -> None:
    # Depth 300 was a 500 (serialisation depth); depth ~200 was saved, and every member's workflow
    # would have been sent a catalogue it cannot decode. `eventDataMatch` now has eventData's bounds.
    headers = await staff(client)
    for depth in (9, 200, 300):
        match: object = 1
        for _ in range(depth - 1):
            match = [match]
        body = badge("Deep", eventDataMatch={"k": match})
        refused = await client.put(f"/v1/admin/badges/b-{uuid.uuid4().hex[:12]}", json=body, headers=headers)
        assert_problem(refused, 422, "validation-failed")
        assert refused.json()["errors"][0]["field"].startswith("body.rule.count.eventDataMatch.k")


@pytest.mark.parametrize("zone", ["Europe", "America/", "x" * 300])
async def test_a_time_zone_that_is_a_folder_or_too_long_is_a_422(client: httpx.AsyncClient, zone: str) -> None:
    # "Europe" (a folder of the zone database) and names past the file system's limit were 500s:
    # ZoneInfo raises OSError for them, not ValueError.
    member = await dev_token(client, f"{uuid.uuid4()}@example.com")
    refused = await client.put("/v1/me/profile", json={"timezone": zone}, headers=member)
    assert_problem(refused, 422, "validation-failed")
    assert [error["field"] for error in refused.json()["errors"]] == ["body.timezone"]


async def test_booleans_and_strings_are_not_numbers_in_definitions_and_profiles(client: httpx.AsyncClient) -> None:
    # Were taken as 0, 1 or 5 (pydantic's lax mode); the schema says integer, boolean, number.
    headers = await staff(client)
    for rule, field in [
        ({"target": True}, "body.rule.count.target"),
        ({"target": "5"}, "body.rule.count.target"),
        ({"target": 3.0}, "body.rule.count.target"),
    ]:
        body = badge("Lax", **rule)
        refused = await client.put(f"/v1/admin/badges/b-{uuid.uuid4().hex[:12]}", json=body, headers=headers)
        assert_problem(refused, 422, "validation-failed")
        assert [error["field"] for error in refused.json()["errors"]] == [field]
    inactive = {**badge("Lax"), "active": "no"}
    refused = await client.put(f"/v1/admin/badges/b-{uuid.uuid4().hex[:12]}", json=inactive, headers=headers)
    assert_problem(refused, 422, "validation-failed")
    assert [error["field"] for error in refused.json()["errors"]] == ["body.active"]
    member = await dev_token(client, f"{uuid.uuid4()}@example.com")
    profile = {"demographics": {"postcode": "SW1A", "dependants": False}}
    refused = await client.put("/v1/me/profile", json=profile, headers=member)
    assert_problem(refused, 422, "validation-failed")
    assert [error["field"] for error in refused.json()["errors"]] == ["body.demographics.dependants"]


@pytest.mark.parametrize("approve", [0, 1, "false", "yes"])
async def test_a_review_decision_is_a_boolean_not_something_like_one(
    client: httpx.AsyncClient, approve: object
) -> None:
    # `{"approve": 0}` was taken as a rejection of the held burst (found with a real review id).
    headers = await staff(client)
    refused = await client.post(
        f"/v1/admin/review-queue/{uuid.uuid4()}/decision", json={"approve": approve}, headers=headers
    )
    assert_problem(refused, 422, "validation-failed")
    assert [error["field"] for error in refused.json()["errors"]] == ["body.approve"]
