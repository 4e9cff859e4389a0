"""The bounds on `eventData` on every surface events arrive on (REST, WebSocket, signed
integrations): what is past them is answered 422 naming the field, before anything reaches the
member's workflow, so a hostile burst can neither be lost in the worker nor stop the member."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from badges.domain import event_data as bounds
from badges.domain.event_data import event_data_violation
from tests.integration.test_badge_engine import admin, count_badge, my_badge
from tests.integration.test_integrations import event_body, post_signed, problem_type, register
from tests.integration.test_integrations import wait_for_progress as wait_for_badge_progress
from tests.integration.test_ws import event_message, member, open_socket
from tests.support import dev_token, eventually, real_time_event

pytestmark = pytest.mark.usefixtures("worker")


def nested(levels: int) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for _ in range(levels - 1):
        data = {"a": data}
    return data


def deep_field(levels: int, prefix: str) -> str:
    """Where a too-deep eventData is refused: the container one past the limit."""
    return ".".join([prefix, "eventData", *["a"] * min(levels - 1, bounds.MAX_DEPTH)])


# eventData past each bound, and the field the 422 names (below `body.`).
PAST = {
    "depth 9": (nested(9), deep_field(9, "body")),
    "depth 197": (nested(197), deep_field(197, "body")),
    "depth 400": (nested(400), deep_field(400, "body")),
    "keys per object": ({"o": {f"k{i}": i for i in range(65)}}, "body.eventData.o"),
    "items per array": ({"a": list(range(257))}, "body.eventData.a"),
    "entries": ({f"k{i}": list(range(16)) for i in range(64)}, "body.eventData.k60"),
    "key length": ({"o": {"k" * 129: 1}}, "body.eventData.o"),
    "string length": ({"s": "x" * 4097}, "body.eventData.s"),
    "NUL": ({"s": "a\u0000b"}, "body.eventData.s"),
    "NUL in a key": ({"a\u0000b": 1}, "body.eventData"),
    "lone surrogate": ({"l": ["\ud800"]}, "body.eventData.l.0"),
    "number": ({"n": 2**53}, "body.eventData.n"),
    "NaN": ({"n": [float("nan")]}, "body.eventData.n.0"),
    "size": ({f"k{i}": "x" * 260 for i in range(64)}, "body.eventData"),
}


@pytest.mark.parametrize(("data", "field"), PAST.values(), ids=PAST.keys())
async def test_rest_refuses_event_data_past_a_bound_naming_the_field(
    client: httpx.AsyncClient, data: dict[str, Any], field: str
) -> None:
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    # Sent as Python's json module writes it (ASCII, escapes kept, NaN allowed), as httpx would not.
    body = json.dumps(real_time_event("b-1", sub, "attendance", **data)).encode()
    response = await client.post("/v1/events", content=body, headers={**headers, "content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:badges:problem:validation-failed"
    assert [error["field"] for error in problem["errors"]] == [field]
    assert field in problem["detail"]


async def test_rest_refuses_bad_text_in_the_events_own_fields(client: httpx.AsyncClient) -> None:
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    for fields, field in [({"id": "a\u0000b"}, "body.id"), ({"userId": "a\u0000b"}, "body.userId")]:
        document = {**real_time_event("t-1", sub), **fields}
        response = await client.post("/v1/events", json=document, headers=headers)
        assert response.status_code == 422, response.text
        assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_a_refused_burst_leaves_the_member_counting(client: httpx.AsyncClient) -> None:
    # What stopped a member for good: twelve attendance events 197 levels deep in a minute were
    # accepted, held for review, and the held burst could never be decoded or stored.
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    for number in range(12):
        for data in (nested(197), {"note": "a\u0000b"}):
            body = real_time_event(f"burst-{number}-{len(data)}", sub, "attendance", **data)
            assert (await client.post("/v1/events", json=body, headers=headers)).status_code == 422
    accepted = await client.post("/v1/events", json=real_time_event("calc-1", sub), headers=headers)
    assert accepted.status_code == 202
    await wait_for_badge_progress(client, headers, "calculator-explorer", 1)


async def test_the_websocket_refuses_event_data_past_a_bound_and_stays_usable(
    api_url: str, client: httpx.AsyncClient
) -> None:
    sub, headers, _ = await member(client)
    async with open_socket(api_url, headers=headers) as socket:
        await socket.ping()
        for levels in (9, 197, 400):
            deep = event_message(f"deep-{levels}", sub, "attendance", **nested(levels))
            refused = await socket.request(deep, "error")
            assert refused["code"] == "invalid-event" and refused["id"] == f"deep-{levels}"
            assert [error["field"] for error in refused["errors"]] == [deep_field(levels, "event")]
        nul = await socket.request(event_message("nul", sub, "attendance", note="a\u0000b"), "error")
        assert [error["field"] for error in nul["errors"]] == ["event.eventData.note"]
        # A lone surrogate (which Python's parser lets through) is refused, and an id holding one
        # is not quoted back (it could not be sent).
        lone = json.dumps(event_message("x", sub, "attendance", note="\ud800")).replace('"x"', '"\\udc00"', 1)
        surrogate = await socket.request(lone, "error")
        assert surrogate["code"] == "invalid-event" and "id" not in surrogate
        assert {error["field"] for error in surrogate["errors"]} == {"event.id", "event.eventData.note"}
        # Brackets nested past the parser's recursion limit fit in one frame.
        too_deep = await socket.request("[" * 30_000 + "]" * 30_000, "error")
        assert too_deep["code"] == "malformed-frame"
        await socket.ping()
        assert (await socket.request(event_message("calc-1", sub), "ack"))["status"] == "accepted"
    await wait_for_badge_progress(client, headers, "calculator-explorer", 1)


async def test_a_signed_integration_refuses_event_data_past_a_bound(client: httpx.AsyncClient) -> None:
    integration_id, secret = await register(client, ["attendance"])
    sub = f"m-{uuid.uuid4()}"
    for event_id, data, field in [
        ("d-9", nested(9), deep_field(9, "body")),
        ("d-197", nested(197), deep_field(197, "body")),
        ("nul", {"note": "a\u0000b"}, "body.eventData.note"),
        ("wide", {"o": {f"k{i}": i for i in range(65)}}, "body.eventData.o"),
        ("long", {"s": "x" * 4097}, "body.eventData.s"),
        ("big", {"n": 1e300}, "body.eventData.n"),
    ]:
        response = await post_signed(client, integration_id, event_body(event_id, sub, "attendance", **data), secret)
        assert response.status_code == 422, response.text
        assert problem_type(response) == "validation-failed"
        assert [error["field"] for error in response.json()["errors"]] == [field]
    # Past the JSON parser's own nesting limit the body is not JSON it reads: refused all the same.
    deepest = await post_signed(client, integration_id, event_body("d-400", sub, "attendance", **nested(400)), secret)
    assert deepest.status_code == 422 and problem_type(deepest) == "validation-failed"


def at_the_bounds(campaign: str) -> dict[str, Any]:
    """eventData at several limits at once: as deep, as long and as large as the bounds allow."""
    deep: Any = "🎉"
    for level in range(bounds.MAX_DEPTH - 1):
        deep = [deep] if level % 2 else {"k": deep}
    data = {
        "campaign": campaign,
        "deep": deep,  # eventData is level 1, so 7 more
        "text": "é🎉\u0001\uffff" * (bounds.MAX_STRING_LENGTH // 4),
        "k" * bounds.MAX_KEY_LENGTH: [bounds.MAX_SAFE_NUMBER, -bounds.MAX_SAFE_NUMBER, 5e-324, -0.5, None, True],
    }
    assert event_data_violation(data) is None
    return data


async def test_a_held_burst_at_the_bounds_is_stored_approved_and_counted(client: httpx.AsyncClient) -> None:
    # Everything intake accepts the worker decodes and the database stores: a burst held for
    # review (its events stored as jsonb) and approved (handed back to the workflow) at the bounds.
    admin_headers = await admin(client)
    campaign = uuid.uuid4().hex
    badge_id = f"bounds-{campaign[:12]}"
    badge = count_badge(campaign, 35, "tool_usage")
    assert (await client.put(f"/v1/admin/badges/{badge_id}", json=badge, headers=admin_headers)).status_code < 300
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    data = at_the_bounds(campaign)
    for number in range(35):  # tool_usage: at most 30 a minute are plausible
        event = real_time_event(f"edge-{number}", sub, "tool_usage", **data)
        response = await client.post("/v1/events", json=event, headers=headers)
        assert response.status_code == 202, response.text
    me = (await client.get("/v1/me", headers=headers)).json()["userId"]

    async def held() -> list[dict[str, Any]]:
        queue = (await client.get(f"/v1/admin/review-queue?user={me}", headers=admin_headers)).json()
        return [item for item in queue if item["userId"] == me]

    async def five_held() -> bool:
        return sum(item["eventCount"] for item in await held()) == 5

    await eventually(five_held)
    assert (await my_badge(client, headers, badge_id))["progress"] == 30
    [item] = await held()
    decided = await client.post(
        f"/v1/admin/review-queue/{item['reviewId']}/decision", json={"approve": True}, headers=admin_headers
    )
    assert decided.status_code == 202

    async def awarded() -> bool:
        mine = await my_badge(client, headers, badge_id)
        return mine["progress"] == 35 and mine["awarded"] is True

    await eventually(awarded)
    # The member is not stopped: a later event is taken up (within the burst's minute, it is held too).
    later = real_time_event("edge-later", sub, "tool_usage", **data)
    assert (await client.post("/v1/events", json=later, headers=headers)).status_code == 202

    async def later_held() -> bool:
        return [item["eventCount"] for item in await held() if item["status"] == "pending"] == [1]

    await eventually(later_held)
