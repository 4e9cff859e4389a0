"""The public HTTP contract, end to end: API → Temporal dev server → worker → PostgreSQL → SSE."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from badges.api.app import create_app
from badges.api.auth import issue_token
from badges.config import Settings
from tests.support import EventSystem, SseEvent, collect, dev_token, for_badge, real_time_event, sse_events

pytestmark = pytest.mark.usefixtures("worker")


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "temporal": "ok"}


async def test_readiness_reports_an_unreachable_temporal(system_settings: Settings) -> None:
    from tests.support import free_port, running_api

    broken = system_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with running_api(broken) as url, httpx.AsyncClient(base_url=url) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["postgres"] == "ok"
    assert ready.json()["checks"]["temporal"].startswith("unavailable")


async def test_dev_tokens_exist_only_in_dev(system_settings: Settings) -> None:
    production = create_app(system_settings.model_copy(update={"badges_env": "prod"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=production), base_url="http://api") as http:
        response = await http.post("/v1/dev/token", json={"sub": "alice", "scopes": ["user"]})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_requests_without_a_valid_token_are_refused(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/me/badges")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"] == "urn:badges:problem:missing-token"
    forged = await client.get("/v1/me/badges", headers={"Authorization": "Bearer not.a.jwt"})
    assert forged.status_code == 401
    assert forged.json()["type"] == "urn:badges:problem:invalid-token"


async def test_a_member_posts_events_only_for_themselves(client: httpx.AsyncClient) -> None:
    headers = await dev_token(client, "mallory@example.com")
    response = await client.post("/v1/events", json=real_time_event("x1", "alice@example.com"), headers=headers)
    assert response.status_code == 403
    assert response.json()["type"] == "urn:badges:problem:not-your-event"


async def test_admin_paths_need_a_staff_scope(client: httpx.AsyncClient) -> None:
    member = await dev_token(client, f"m-{uuid.uuid4()}")
    assert (await client.get("/v1/admin/metrics", headers=member)).status_code == 403
    operator = await dev_token(client, "ops@example.com", ["operator"])
    metrics = await client.get("/v1/admin/metrics", headers=operator)
    assert metrics.status_code == 200
    assert {"members", "eventsAccepted", "awardsByBadge"} <= metrics.json().keys()


async def test_bad_input_gets_a_problem_that_names_the_field(client: httpx.AsyncClient) -> None:
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    response = await client.post("/v1/events", json=real_time_event("e1", sub, "dancing"), headers=headers)
    assert response.status_code == 422
    problem = response.json()
    assert problem["status"] == 422
    assert [error["field"] for error in problem["errors"]] == ["body.type"]
    assert "body.type" in problem["detail"]
    malformed = await client.post(
        "/v1/events", content=b"{not json", headers={**headers, "content-type": "application/json"}
    )
    assert malformed.status_code == 422


async def test_oversized_bodies_get_413(client: httpx.AsyncClient) -> None:
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    body = real_time_event("big", sub, blob="x" * (65 * 1024))
    response = await client.post("/v1/events", json=body, headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_event_reaches_the_stream_and_badges_once(client: httpx.AsyncClient) -> None:
    sub = f"{uuid.uuid4()}@example.com"
    headers = await dev_token(client, sub)
    me = (await client.get("/v1/me", headers=headers)).json()
    assert me["userId"] != sub and uuid.UUID(me["userId"])

    async with client.stream("GET", "/v1/me/stream", headers=headers) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = for_badge(sse_events(stream), "calculator-explorer")
        first = await client.post("/v1/events", json=real_time_event("calc-1", sub), headers=headers)
        assert first.status_code == 202
        assert first.json() == {"status": "accepted", "id": "calc-1"}
        again = await client.post("/v1/events", json=real_time_event("calc-1", sub), headers=headers)
        assert again.status_code == 200
        assert again.json() == {"status": "duplicate", "id": "calc-1"}
        [progress] = await collect(events, 1)
        assert progress.event == "progress"
        assert progress.data == {
            "badgeId": "calculator-explorer",
            "name": "Calculator explorer",
            "kind": "count",
            "version": 1,
            "value": 1,
            "target": 3,
            "tier": None,
        }
        for event_id in ("calc-2", "calc-3"):
            response = await client.post("/v1/events", json=real_time_event(event_id, sub), headers=headers)
            assert response.status_code == 202
        received = await collect(events, 3)  # progress may come as one or two batches, then the award
        while received[-1].event != "award":
            received += await collect(events, 1)

    ids = [progress.id] + [item.id for item in received]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert received[-1].data["badgeId"] == "calculator-explorer"
    assert [item.data["value"] for item in received if item.event == "progress"][-1] == 3

    badges = (await client.get("/v1/me/badges", headers=headers)).json()
    calculator = next(b for b in badges["badges"] if b["badgeId"] == "calculator-explorer")
    assert calculator["progress"] == 3 and calculator["awarded"] is True
    assert badges["userId"] == me["userId"]


async def test_the_stream_ends_at_its_tokens_expiry_and_resumes_with_a_fresh_one(
    client: httpx.AsyncClient, system_settings: Settings
) -> None:
    # Checked once at open, so the server must end the stream itself at `exp`, saying so, as the
    # WebSocket closes with "token expired".
    sub = f"{uuid.uuid4()}@example.com"
    short = {"Authorization": f"Bearer {issue_token(system_settings, sub, ['user'], ttl=3)}"}
    fresh = await dev_token(client, sub)
    async with client.stream("GET", "/v1/me/stream", headers=short) as stream:
        events = sse_events(stream)
        posted = await client.post("/v1/events", json=real_time_event("before-expiry", sub), headers=fresh)
        assert posted.status_code == 202
        # The stream ends by itself (well within 20 s).
        received = await asyncio.wait_for(until_it_ends(events), 20)
    assert [item.event for item in received][-1] == "reauthenticate"
    *messages, last = received
    progress = [item for item in messages if item.data.get("badgeId") == "calculator-explorer"]
    assert progress and progress[0].data["value"] == 1
    assert last.id is None
    assert last.data == {"reason": "token-expired", "lastEventId": messages[-1].id}

    # Reconnecting with a fresh token and Last-Event-ID misses nothing that came meanwhile.
    missed = await client.post("/v1/events", json=real_time_event("after-expiry", sub), headers=fresh)
    assert missed.status_code == 202
    resume = {**fresh, "Last-Event-ID": str(last.data["lastEventId"])}
    async with client.stream("GET", "/v1/me/stream", headers=resume) as stream:
        [item] = await collect(for_badge(sse_events(stream), "calculator-explorer"), 1)
    assert item.data["value"] == 2


async def until_it_ends(events: AsyncIterator[SseEvent]) -> list[SseEvent]:
    return [item async for item in events]


async def test_stream_resumes_after_last_event_id_with_nothing_missing_or_repeated(
    client: httpx.AsyncClient, event_system: EventSystem
) -> None:
    sub = f"{uuid.uuid4()}@example.com"
    headers = await dev_token(client, sub)
    seen: list[SseEvent] = []  # every message of the first connection, whichever badge

    async def until_voter(stream: AsyncIterator[SseEvent], value: int) -> SseEvent:
        async for item in stream:
            seen.append(item)
            if item.data.get("badgeId") == "active-voter" and item.data["value"] == value:
                return item
        raise AssertionError("stream ended")

    async with client.stream("GET", "/v1/me/stream", headers=headers) as stream:
        events = sse_events(stream)
        await event_system.post(real_time_event("v1", sub, "voting"))
        first = await asyncio.wait_for(until_voter(events, 1), 20)
        await event_system.post(real_time_event("v2", sub, "voting"))
        await asyncio.wait_for(until_voter(events, 2), 20)
    # Disconnected: more happens while the member is away.
    for i in range(3, 6):
        await event_system.post(real_time_event(f"v{i}", sub, "voting"))
    await _wait_for_progress(client, headers, "active-voter", 5)

    async with client.stream("GET", "/v1/me/stream", headers={**headers, "Last-Event-ID": str(first.id)}) as stream:
        events = sse_events(stream)
        resumed = await collect(events, 1)
        while not (resumed[-1].event == "award" and resumed[-1].data["badgeId"] == "active-voter"):
            resumed += await collect(events, 1)
    # Exactly what came after `first`: what the first connection saw after it, then the rest.
    after_first = [item.id for item in seen if item.id > first.id]
    assert after_first and [item.id for item in resumed[: len(after_first)]] == after_first
    assert [item.id for item in resumed] == sorted({item.id for item in resumed})
    assert all(item.id > first.id for item in resumed)
    voter = [
        item.data["value"] for item in resumed if item.event == "progress" and item.data["badgeId"] == "active-voter"
    ]
    assert voter[0] == 2 and voter[-1] == 5 and voter == sorted(set(voter))  # later batches may merge events

    # Resuming from the last id gives nothing old: the next thing seen is new.
    async with client.stream("GET", "/v1/me/stream", headers={**headers, "Last-Event-ID": str(resumed[-1].id)}) as s:
        events = for_badge(sse_events(s), "regular-attendee")
        await event_system.post(real_time_event("a1", sub, "attendance"))
        [fresh] = await collect(events, 1)
    assert fresh.id > resumed[-1].id and fresh.data["badgeId"] == "regular-attendee"


async def test_a_bad_last_event_id_is_refused(client: httpx.AsyncClient) -> None:
    headers = await dev_token(client, f"m-{uuid.uuid4()}")
    response = await client.get("/v1/me/stream", headers={**headers, "Last-Event-ID": "yesterday"})
    assert response.status_code == 400
    assert response.json()["type"] == "urn:badges:problem:invalid-last-event-id"


async def _wait_for_progress(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str, value: int) -> None:
    for _ in range(200):
        badges = (await client.get("/v1/me/badges", headers=headers)).json()["badges"]
        if next(b for b in badges if b["badgeId"] == badge_id)["progress"] == value:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{badge_id} never reached {value}")


async def test_oversized_bodies_without_a_length_get_413(client: httpx.AsyncClient) -> None:
    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(70):
            yield b"x" * 1024

    response = await client.post(
        "/v1/events", content=chunks(), headers={**headers, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["type"] == "urn:badges:problem:body-too-large"


async def test_an_event_refused_while_temporal_is_down_is_accepted_on_retry(
    system_settings: Settings, client: httpx.AsyncClient
) -> None:
    from tests.support import free_port, running_api

    sub = f"m-{uuid.uuid4()}"
    headers = await dev_token(client, sub)
    body = real_time_event("while-down", sub)
    broken = system_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with running_api(broken) as url, httpx.AsyncClient(base_url=url, timeout=30) as down:
        refused = await down.post("/v1/events", json=body, headers=headers)
    assert refused.status_code == 503
    assert refused.json()["type"] == "urn:badges:problem:temporal-unavailable"

    retried = await client.post("/v1/events", json=body, headers=headers)
    assert retried.status_code == 202  # not "duplicate": the first attempt never reached Temporal
    await _wait_for_progress(client, headers, "calculator-explorer", 1)
    again = await client.post("/v1/events", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"


async def test_the_openapi_contract_declares_errors_as_they_are_answered(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    consent = spec["paths"]["/v1/me/consent"]["put"]["responses"]
    assert consent["422"]["content"] == problem and consent["default"]["content"] == problem
    assert "HTTPValidationError" not in json.dumps(spec)
    # And a real 422 has the declared shape.
    headers = await dev_token(client, f"{uuid.uuid4()}@example.com")
    answer = await client.put("/v1/me/consent", json={"scopes": {"nope": None}}, headers=headers)
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    assert set(answer.json()) <= set(spec["components"]["schemas"]["ProblemDetails"]["properties"])
