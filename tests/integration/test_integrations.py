"""Event systems over the real API, Temporal dev server, worker and PostgreSQL: registering them,
their signed events, replays, rotation, and the award-webhook delivery list."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.config import Settings
from badges.db.keys import KeyStore
from badges.db.webhooks import record_delivery_attempt
from badges.domain.signatures import sign
from tests.conftest import create_member
from tests.support import dev_token

pytestmark = pytest.mark.usefixtures("worker")


def event_body(event_id: str, user_id: str, type_: str = "tool_usage", **data: Any) -> bytes:
    document = {
        "id": event_id,
        "type": type_,
        "userId": user_id,
        "eventData": data,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    return json.dumps(document).encode()


async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    return await dev_token(client, "admin@example.com", ["admin"])


async def register(client: httpx.AsyncClient, event_types: list[str]) -> tuple[str, str]:
    integration_id = f"scanner-{uuid.uuid4().hex[:12]}"
    response = await client.post(
        "/v1/admin/integrations",
        json={"integrationId": integration_id, "eventTypes": event_types},
        headers=await admin(client),
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["integrationId"] == integration_id and answer["eventTypes"] == event_types
    assert len(answer["secret"]) >= 32 and answer["createdAt"]
    return integration_id, answer["secret"]


async def post_signed(
    client: httpx.AsyncClient,
    integration_id: str,
    body: bytes,
    secret: str | None = None,
    *,
    timestamp: int | None = None,
    header: str | None = None,
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if header is None and secret is not None:
        header = sign(secret.encode(), int(time.time()) if timestamp is None else timestamp, body)
    if header is not None:
        headers["X-Badges-Signature"] = header
    return await client.post(f"/v1/integrations/{integration_id}/events", content=body, headers=headers)


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["type"]).removeprefix("urn:badges:problem:")


async def progress_of(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str) -> int:
    badges = (await client.get("/v1/me/badges", headers=headers)).json()["badges"]
    mine = next((b for b in badges if b["badgeId"] == badge_id), None)
    assert mine is not None, f"{badge_id} is not in GET /v1/me/badges"
    return int(mine["progress"])


async def wait_for_progress(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str, value: int) -> None:
    for _ in range(200):
        if await progress_of(client, headers, badge_id) == value:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{badge_id} never reached {value}")


async def test_a_signed_event_counts_for_its_member_once(client: httpx.AsyncClient) -> None:
    integration_id, secret = await register(client, ["tool_usage"])
    sub = f"{uuid.uuid4()}@example.com"
    member = await dev_token(client, sub)

    body = event_body("calc-1", sub, calculator="budget")
    signed_at = int(time.time())
    header = sign(secret.encode(), signed_at, body)
    accepted = await post_signed(client, integration_id, body, header=header)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"status": "accepted", "id": "calc-1"}
    await wait_for_progress(client, member, "calculator-explorer", 1)

    replayed = await post_signed(client, integration_id, body, header=header)
    assert replayed.status_code == 409
    assert problem_type(replayed) == "replayed-request"
    # The same event signed afresh (another timestamp, so another signature) is a retry: a
    # duplicate, as on POST /v1/events.
    resent = await post_signed(client, integration_id, body, secret, timestamp=signed_at - 1)
    assert resent.status_code == 200 and resent.json() == {"status": "duplicate", "id": "calc-1"}

    second = await post_signed(client, integration_id, event_body("calc-2", sub, calculator="loan"), secret)
    assert second.status_code == 202
    await wait_for_progress(client, member, "calculator-explorer", 2)  # never 3: nothing counted twice


async def test_a_wrong_secret_and_an_unknown_integration_get_the_same_answer(client: httpx.AsyncClient) -> None:
    integration_id, secret = await register(client, ["attendance"])
    body = event_body("a-1", "someone", "attendance")
    wrong = await post_signed(client, integration_id, body, secret + "x")
    unknown = await post_signed(client, f"nobody-{uuid.uuid4().hex[:8]}", body, secret)
    assert wrong.status_code == unknown.status_code == 401
    assert problem_type(wrong) == problem_type(unknown) == "invalid-signature"
    assert wrong.json()["detail"] == unknown.json()["detail"]
    # The right secret over other bytes than were signed is no better.
    header = sign(secret.encode(), int(time.time()), body)
    tampered = await post_signed(client, integration_id, body.replace(b"a-1", b"a-2"), header=header)
    assert tampered.status_code == 401 and problem_type(tampered) == "invalid-signature"


@pytest.mark.parametrize("offset", [-301, 301])
async def test_stale_and_future_timestamps_are_refused(client: httpx.AsyncClient, offset: int) -> None:
    integration_id, secret = await register(client, ["attendance"])
    body = event_body("a-1", f"{uuid.uuid4()}", "attendance")
    response = await post_signed(client, integration_id, body, secret, timestamp=int(time.time()) + offset)
    assert response.status_code == 401
    assert problem_type(response) == "stale-signature"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "t=now,v1=" + "a" * 64,
        "v1=" + "a" * 64,
        "t=1795600000",
        "t=1795600000,v1=not-hex",
        "sha256=" + "a" * 64,
    ],
)
async def test_malformed_signature_headers_are_refused(client: httpx.AsyncClient, header: str | None) -> None:
    integration_id, _ = await register(client, ["attendance"])
    response = await post_signed(client, integration_id, event_body("a-1", "someone", "attendance"), header=header)
    assert response.status_code == 401
    assert problem_type(response) == "invalid-signature"


async def test_an_event_type_the_integration_may_not_send_is_refused(client: httpx.AsyncClient) -> None:
    integration_id, secret = await register(client, ["attendance", "voting"])
    sub = f"{uuid.uuid4()}"
    refused = await post_signed(client, integration_id, event_body("t-1", sub, "tool_usage"), secret)
    assert refused.status_code == 403
    assert problem_type(refused) == "event-type-not-allowed"
    allowed = await post_signed(client, integration_id, event_body("v-1", sub, "voting"), secret)
    assert allowed.status_code == 202


async def test_a_signed_body_that_is_not_an_event_names_the_field(client: httpx.AsyncClient) -> None:
    integration_id, secret = await register(client, ["attendance"])
    invalid = await post_signed(client, integration_id, event_body("d-1", "someone", "dancing"), secret)
    assert invalid.status_code == 422
    assert problem_type(invalid) == "validation-failed"
    assert [error["field"] for error in invalid.json()["errors"]] == ["body.type"]
    assert "body.type" in invalid.json()["detail"]
    not_json = await post_signed(client, integration_id, b"{not json", secret)
    assert not_json.status_code == 422 and problem_type(not_json) == "validation-failed"


async def test_after_rotation_only_the_new_secret_is_accepted(client: httpx.AsyncClient) -> None:
    integration_id, old = await register(client, ["attendance"])
    sub = f"{uuid.uuid4()}"
    assert (await post_signed(client, integration_id, event_body("r-1", sub, "attendance"), old)).status_code == 202

    rotated = await client.post(f"/v1/admin/integrations/{integration_id}/secret", headers=await admin(client))
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != old and rotated.json()["integrationId"] == integration_id

    refused = await post_signed(client, integration_id, event_body("r-2", sub, "attendance"), old)
    assert refused.status_code == 401 and problem_type(refused) == "invalid-signature"
    accepted = await post_signed(client, integration_id, event_body("r-2", sub, "attendance"), new)
    assert accepted.status_code == 202
    missing = await client.post(
        f"/v1/admin/integrations/nobody-{uuid.uuid4().hex[:6]}/secret", headers=await admin(client)
    )
    assert missing.status_code == 404 and problem_type(missing) == "integration-not-found"


async def test_a_disabled_integration_is_refused_and_its_id_stays_taken(client: httpx.AsyncClient) -> None:
    integration_id, secret = await register(client, ["attendance"])
    headers = await admin(client)
    assert (await client.delete(f"/v1/admin/integrations/{integration_id}", headers=headers)).status_code == 204
    refused = await post_signed(client, integration_id, event_body("x-1", "someone", "attendance"), secret)
    assert refused.status_code == 401 and problem_type(refused) == "invalid-signature"
    assert (await client.delete(f"/v1/admin/integrations/{integration_id}", headers=headers)).status_code == 404
    assert (await client.post(f"/v1/admin/integrations/{integration_id}/secret", headers=headers)).status_code == 404
    again = await client.post(
        "/v1/admin/integrations", json={"integrationId": integration_id, "eventTypes": ["voting"]}, headers=headers
    )
    assert again.status_code == 409 and problem_type(again) == "integration-exists"
    listed = (await client.get("/v1/admin/integrations", headers=headers)).json()["integrations"]
    assert next(item for item in listed if item["integrationId"] == integration_id)["disabledAt"] is not None


async def test_registering_needs_admin_and_listing_needs_staff(client: httpx.AsyncClient) -> None:
    body = {"integrationId": f"s-{uuid.uuid4().hex[:8]}", "eventTypes": ["attendance"]}
    member = await dev_token(client, f"m-{uuid.uuid4()}")
    operator = await dev_token(client, "ops@example.com", ["operator"])
    for headers in (member, operator):
        refused = await client.post("/v1/admin/integrations", json=body, headers=headers)
        assert refused.status_code == 403 and problem_type(refused) == "insufficient-scope"
    assert (await client.post("/v1/admin/integrations", json=body)).status_code == 401
    assert (await client.get("/v1/admin/integrations", headers=member)).status_code == 403
    assert (await client.delete(f"/v1/admin/integrations/{body['integrationId']}", headers=operator)).status_code == 403

    integration_id, secret = await register(client, ["attendance"])
    listed = await client.get("/v1/admin/integrations", headers=operator)
    assert listed.status_code == 200
    mine = next(item for item in listed.json()["integrations"] if item["integrationId"] == integration_id)
    assert mine["eventTypes"] == ["attendance"] and mine["disabledAt"] is None
    assert "secret" not in listed.text.lower() and secret not in listed.text


@pytest.mark.parametrize(
    "body",
    [
        {"integrationId": "Upper-Case", "eventTypes": ["attendance"]},
        {"integrationId": "x", "eventTypes": ["attendance"]},
        {"integrationId": "scanner-1", "eventTypes": []},
        {"integrationId": "scanner-1", "eventTypes": ["attendance", "attendance"]},
        {"integrationId": "scanner-1", "eventTypes": ["dancing"]},
        {"integrationId": "scanner-1", "eventTypes": ["attendance"], "secret": "mine"},
    ],
)
async def test_bad_registrations_name_the_field(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/v1/admin/integrations", json=body, headers=await admin(client))
    assert response.status_code == 422
    assert problem_type(response) == "validation-failed"


async def test_a_registered_id_cannot_be_registered_again(client: httpx.AsyncClient) -> None:
    integration_id, _ = await register(client, ["voting"])
    again = await client.post(
        "/v1/admin/integrations",
        json={"integrationId": integration_id, "eventTypes": ["voting"]},
        headers=await admin(client),
    )
    assert again.status_code == 409 and problem_type(again) == "integration-exists"


async def test_a_request_refused_while_temporal_is_down_may_be_sent_again(
    system_settings: Settings, client: httpx.AsyncClient
) -> None:
    from tests.support import free_port, running_api

    integration_id, secret = await register(client, ["attendance"])
    sub = f"{uuid.uuid4()}"
    body = event_body("down-1", sub, "attendance")
    header = sign(secret.encode(), int(time.time()), body)
    broken = system_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with running_api(broken) as url, httpx.AsyncClient(base_url=url, timeout=30) as down:
        refused = await post_signed(down, integration_id, body, header=header)
    assert refused.status_code == 503 and problem_type(refused) == "temporal-unavailable"
    # Not acted on, so not a replay: the identical request goes through once Temporal is back.
    retried = await post_signed(client, integration_id, body, header=header)
    assert retried.status_code == 202
    assert (await post_signed(client, integration_id, body, header=header)).status_code == 409


async def test_staff_list_webhook_deliveries_newest_first(
    client: httpx.AsyncClient, engine: AsyncEngine, keys: KeyStore
) -> None:
    member_id = await create_member(engine, keys)
    badge_id = f"hooked-{uuid.uuid4().hex[:8]}"
    for number, status in ((1, "failed"), (2, "delivered"), (3, "pending")):
        await record_delivery_attempt(
            engine,
            delivery_id=f"{badge_id}-{number}",
            user_id=member_id,
            badge_id=badge_id,
            url="https://partner.example/hooks",
            status=status,
            attempt=number,
            status_code=503 if status == "pending" else None,
            error=None,
        )
    operator = await dev_token(client, "ops@example.com", ["operator"])
    listed = await client.get("/v1/admin/webhook-deliveries", params={"badgeId": badge_id}, headers=operator)
    assert listed.status_code == 200
    deliveries = listed.json()["deliveries"]
    assert [item["deliveryId"] for item in deliveries] == [f"{badge_id}-3", f"{badge_id}-2", f"{badge_id}-1"]
    assert deliveries[0] == {
        **deliveries[0],
        "memberId": str(member_id),
        "badgeId": badge_id,
        "status": "pending",
        "attempts": 3,
        "lastStatusCode": 503,
    }
    failed = await client.get(
        "/v1/admin/webhook-deliveries", params={"badgeId": badge_id, "status": "failed", "limit": 5}, headers=operator
    )
    assert [item["deliveryId"] for item in failed.json()["deliveries"]] == [f"{badge_id}-1"]
    member = await dev_token(client, f"m-{uuid.uuid4()}")
    assert (await client.get("/v1/admin/webhook-deliveries", headers=member)).status_code == 403
    assert (
        await client.get("/v1/admin/webhook-deliveries", params={"status": "lost"}, headers=operator)
    ).status_code == 422
