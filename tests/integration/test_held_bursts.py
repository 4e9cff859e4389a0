"""A held burst of 5,000 events, approved end to end through the real API, worker, Temporal dev
server and PostgreSQL: review items stay bounded, each approval is a small signal, the workflow
loads the held events in pages, all 5,000 count and the badge is awarded; no payload in the
member's workflow histories comes near Temporal's limit (2 MB).

The first events go through `POST /v1/events`; the rest of the burst is handed to the member's
workflow as the API hands each event after intake (`badges.temporal.record_event`, stamped as
intake stamps it), because 5,000 HTTP requests served in this one test process take minutes.

Before, the burst grew one review item's jsonb without bound and the approval carried every
held event in one signal (here about 3.5 MB), which Temporal refused: 503 "retry shortly" forever.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from badges.config import Settings
from badges.db.catalogue import current_revision
from badges.domain.events import BadgeEvent, RealTimeEvent
from badges.domain.identity import user_badges_workflow_id
from badges.temporal import record_event
from tests.support import EventSystem, dev_token, eventually, real_time_event, running_api

pytestmark = pytest.mark.usefixtures("worker")

BURST = 5_000
PLAUSIBLE = 10  # attendance events a minute that count at once (domain/plausibility.py)
THROUGH_THE_API = 20
NOTE = "n" * 400  # each event about 650 bytes as JSON: the burst is about 3.5 MB
ITEM_EVENTS, ITEM_BYTES = 500, 256 * 1024  # a review item's bounds (docs/api/events.md, "Anti-gaming")
PAYLOAD_CEILING = 512 * 1024  # Temporal warns at 512 KiB and refuses at 2 MB


async def hand_to_workflow(client: Client, settings: Settings, member_id: uuid.UUID, event: BadgeEvent) -> None:
    """`record_event` as the API calls it, retried as the API's clients retry its 503: the burst
    makes the workflow continue as new, and while its run is closing Temporal refuses signals
    (RESOURCE_EXHAUSTED, "workflow is closing"), for longer than the SDK's own retries on a busy
    machine."""
    for attempt in range(30):
        try:
            await record_event(client, settings, member_id, event)
            return
        except RPCError as error:
            if error.status != RPCStatusCode.RESOURCE_EXHAUSTED or attempt == 29:
                raise
            await asyncio.sleep(0.5)


async def test_a_held_burst_of_5000_events_is_approved_end_to_end(
    system_settings: Settings, dev_server: WorkflowEnvironment, engine: AsyncEngine
) -> None:
    # The member rate limit (120 a minute) would hold the sender back: this API lets them through.
    settings = system_settings.model_copy(update={"member_event_rate": "100000/minute"})
    async with running_api(settings) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        admin = await dev_token(client, f"admin-{uuid.uuid4()}", ["admin"])
        campaign = uuid.uuid4().hex
        badge_id = f"burst-{campaign[:12]}"
        rule = {"kind": "count", "eventType": "attendance", "target": BURST, "eventDataMatch": {"campaign": campaign}}
        spec = {"name": "Five thousand", "rule": rule}
        defined = await client.put(f"/v1/admin/badges/{badge_id}", json=spec, headers=admin)
        assert defined.status_code == 201, defined.text
        sub = f"m-{uuid.uuid4()}"
        headers = await dev_token(client, sub)
        member = (await client.get("/v1/me", headers=headers)).json()["userId"]

        scanner = await EventSystem.register(client, ["attendance"])  # check-ins come signed
        for n in range(THROUGH_THE_API):
            body = real_time_event(f"b{n}-{campaign[:8]}", sub, "attendance", campaign=campaign, note=NOTE)
            assert (await scanner.post(body)).status_code == 202
        revision = await current_revision(engine)
        sending = asyncio.Semaphore(32)

        async def hand_over(n: int) -> None:
            wire = RealTimeEvent.model_validate(
                real_time_event(f"b{n}-{campaign[:8]}", sub, "attendance", campaign=campaign, note=NOTE)
            )
            now = datetime.now(UTC)
            event = BadgeEvent.from_wire(wire).model_copy(
                update={"local_date": now.date(), "catalogue_revision": revision, "received_at": now}
            )
            async with sending:
                await hand_to_workflow(dev_server.client, settings, uuid.UUID(member), event)

        await asyncio.gather(*(hand_over(n) for n in range(THROUGH_THE_API, BURST)))

        async def items() -> list[dict[str, Any]]:
            queue = (await client.get("/v1/admin/review-queue?limit=500", headers=admin)).json()
            return [item for item in queue if item["userId"] == member]

        async def all_in() -> bool:
            held = sum(item["eventCount"] for item in await items())
            return held + (await badge(client, headers, badge_id))["progress"] == BURST

        # Ten a minute count at once (more if sending took over a minute), the rest are held.
        await eventually(all_in, timeout=60)
        held = await items()
        counted = (await badge(client, headers, badge_id))["progress"]
        assert PLAUSIBLE <= counted < BURST
        # Bounded items (here the size bound closes each first), each held event in one of them.
        assert all(0 < item["eventCount"] <= ITEM_EVENTS for item in held)
        assert len(held) >= (BURST - counted) * 650 // ITEM_BYTES
        ids = [event_id for item in held for event_id in item["eventIds"]]
        assert len(ids) == len(set(ids)) == BURST - counted
        assert all("attendance events within 60 s" in item["reason"] for item in held)

        for item in held:
            decided = await client.post(
                f"/v1/admin/review-queue/{item['reviewId']}/decision", json={"approve": True}, headers=admin
            )
            assert decided.status_code == 202, decided.text

        async def awarded() -> bool:
            mine = await badge(client, headers, badge_id)
            return mine["progress"] == BURST and mine["awarded"] is True

        await eventually(awarded, timeout=60)
        approved = (await client.get("/v1/admin/review-queue?status=approved&limit=500", headers=admin)).json()
        assert {item["reviewId"] for item in held} <= {item["reviewId"] for item in approved}

    # Every run of the member's workflow (it continued as new many times): no payload near the limit.
    largest = 0
    async for run in dev_server.client.list_workflows(f"WorkflowId = '{user_badges_workflow_id(member)}'"):
        history = await dev_server.client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        largest = max([largest, *(payload_bytes(event) for event in history.events)])
    assert 0 < largest < PAYLOAD_CEILING


async def badge(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str) -> dict[str, Any]:
    badges = (await client.get("/v1/me/badges", headers=headers)).json()["badges"]
    return next(item for item in badges if item["badgeId"] == badge_id)  # type: ignore[no-any-return]


def payload_bytes(event: Any) -> int:
    """The largest payload an event carries (signal input, marker data, workflow input): its
    serialized size, as the server measures it against the blob limit."""
    attributes = (
        event.workflow_execution_signaled_event_attributes.input.payloads,
        event.workflow_execution_started_event_attributes.input.payloads,
        event.workflow_execution_continued_as_new_event_attributes.input.payloads,
        *(details.payloads for details in event.marker_recorded_event_attributes.details.values()),
    )
    return max((payload.ByteSize() for payloads in attributes for payload in payloads), default=0)
