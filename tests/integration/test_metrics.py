"""`GET /metrics` for operators: requests by route template (never a raw path), events accepted by
channel, stream connections, outbox lag, rewards, budgets and the review queue; with two API
processes on one port, every scrape tells the service's totals whichever process answers; the
worker's own metrics and the Temporal SDK's on their ports; and every metric docs/deployment.md
names is in a scrape."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect

from badges.api.metrics import READINGS_SECONDS
from badges.config import Settings
from badges.db.rewards import set_budget
from tests.processes import settings_environment, start_worker, stop
from tests.support import EventSystem, dev_token, eventually, free_port, real_time_event, sse_events

ROOT = Path(__file__).resolve().parents[2]
# Our metrics and the SDK's, as code in the guide (Temporal Cloud's own, `temporal_cloud_*`, are
# not scraped from our processes).
DOCUMENTED = re.compile(r"`((?:badges|temporal)_(?!cloud_)[a-z0-9_]+)`")
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def samples(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(found: Iterable[Sample], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (over processes, say)."""
    return sum(
        sample.value
        for sample in found
        if sample.name == name and all(sample.labels.get(key) == want for key, want in labels.items())
    )


def names(text: str) -> set[str]:
    """Every sample's name and its family's (`x_total` and `x`)."""
    found: set[str] = set()
    for family in text_string_to_metric_families(text):
        found.add(family.name)
        found.update(sample.name for sample in family.samples)
    return found


async def scrape(url: str) -> str:
    # A connection of its own each time: with several processes on the port, any may answer.
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_the_api_counts_requests_events_streams_and_reads_the_database_on_scrape(
    client: httpx.AsyncClient, api_url: str, event_system: EventSystem, engine: AsyncEngine, worker: None
) -> None:
    before = samples(await scrape(api_url))
    sub = f"{uuid.uuid4()}@example.com"
    headers = await dev_token(client, sub)
    assert (
        await client.post("/v1/events", json=real_time_event(str(uuid.uuid4()), sub), headers=headers)
    ).status_code == 202
    assert (await event_system.post(real_time_event(str(uuid.uuid4()), sub, "attendance"))).status_code == 202
    socket_url = api_url.replace("http://", "ws://", 1) + "/v1/me/ws"
    async with connect(socket_url, additional_headers=headers, proxy=None) as socket:
        await socket.send(json.dumps({"type": "event", "event": real_time_event(str(uuid.uuid4()), sub)}))
        while (answer := json.loads(await socket.recv()))["type"] != "ack":
            pass
        assert answer["status"] == "accepted"
        during_socket = samples(await scrape(api_url))
    # A route with a path parameter is labelled with its template, never the member's value.
    instance = str(uuid.uuid4())
    await client.get(f"/v1/me/badges/top-saver/credentials/{instance}", headers=headers)
    budget_scope = f"badge-{uuid.uuid4().hex[:8]}"
    await set_budget(engine, budget_scope, "points", "", 500, "defer")
    async with client.stream("GET", "/v1/me/stream", headers=headers) as stream:
        assert stream.status_code == 200
        first = sse_events(stream)  # noqa: F841 - open until the scrape has seen it
        during_stream = await scrape(api_url)

    after_text = await scrape(api_url)
    after = samples(after_text)
    for channel in ("rest", "websocket", "webhook"):
        gained = value(after, "badges_events_accepted_total", channel=channel) - value(
            before, "badges_events_accepted_total", channel=channel
        )
        assert gained == 1, channel
    assert value(during_socket, "badges_stream_connections", transport="websocket") == 1 + value(
        before, "badges_stream_connections", transport="websocket"
    )
    assert value(samples(during_stream), "badges_stream_connections", transport="sse") == 1 + value(
        before, "badges_stream_connections", transport="sse"
    )
    events = value(
        after, "badges_http_request_duration_seconds_count", method="POST", route="/v1/events", status="2xx"
    ) - value(before, "badges_http_request_duration_seconds_count", method="POST", route="/v1/events", status="2xx")
    assert events == 1
    routes = {sample.labels["route"] for sample in after if "route" in sample.labels}
    assert "/v1/me/badges/{badge_id}/credentials/{instance}" in routes
    assert "/v1/integrations/{integration_id}/events" in routes
    assert instance not in after_text and event_system.integration_id not in after_text
    assert all(route.startswith("/") or route == "unmatched" for route in routes)
    # One process: no pid label anywhere.
    assert not any("pid" in sample.labels for sample in after)
    for name in ("badges_rewards", "badges_review_queue_pending", "badges_outbox_newest_id", "badges_outbox_lag_rows"):
        assert name in names(after_text), name

    async def budget_scraped() -> bool:
        found = samples(await scrape(api_url))
        return value(found, "badges_reward_budget_limit", scope=budget_scope) == 500 and (
            value(found, "badges_reward_budget_remaining", scope=budget_scope) == 500
        )

    await eventually(budget_scraped, timeout=READINGS_SECONDS * 3)

    async def caught_up() -> bool:
        found = samples(await scrape(api_url))
        return value(found, "badges_outbox_lag_rows") == 0 and value(found, "badges_outbox_lag_seconds") == 0

    await eventually(caught_up, timeout=READINGS_SECONDS * 3)


@asynccontextmanager
async def api_processes(settings: Settings, port: int, processes: int) -> AsyncIterator[subprocess.Popen[bytes]]:
    """`python -m badges.cli.api --workers N`, as the image and `make dev` run it."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "badges.cli.api",
            "--port",
            str(port),
            "--workers",
            str(processes),
            "--log-level",
            "warning",
        ],
        env={**settings_environment(settings), "PROMETHEUS_MULTIPROC_DIR": ""},
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def up() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, timeout=60)
        yield process
    finally:
        stop(process)


async def test_two_api_processes_on_one_port_report_the_services_totals_and_workers_serve_their_own_and_the_sdks(
    system_settings: Settings, tmp_path: Path
) -> None:
    """Every scrape, whichever process answers it, counts every request and event of both; each
    process's stream and tail gauges carry its pid. The worker serves its own metrics (events it
    applied) on one port and the Temporal SDK's on another."""
    settings = system_settings.model_copy(
        update={
            "task_queue": f"tq-{uuid.uuid4()}",
            "worker_queues": "live",
            "worker_metrics_port": free_port(),
            "worker_sdk_metrics_port": free_port(),
        }
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "worker.log").open("wb")
    worker = start_worker(settings, log)
    try:
        async with api_processes(settings, port, 2), httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def both_started() -> bool:  # each has read the outbox's position
                found = samples(await scrape(url))
                return len({sample.labels["pid"] for sample in found if sample.name == "badges_outbox_tail_id"}) == 2

            await eventually(both_started, timeout=60)
            health_checks = 24
            started = value(samples(await scrape(url)), "badges_http_request_duration_seconds_count", route="/healthz")
            for _ in range(health_checks):
                async with httpx.AsyncClient(base_url=url) as once:  # new connections: either process
                    assert (await once.get("/healthz")).status_code == 200
            sub = f"{uuid.uuid4()}@example.com"
            headers = await dev_token(http, sub)
            posted = await http.post("/v1/events", json=real_time_event(str(uuid.uuid4()), sub), headers=headers)
            assert posted.status_code == 202, posted.text
            answered_by: set[str] = set()
            for _ in range(60):
                found = samples(await scrape(url))
                healthz = value(found, "badges_http_request_duration_seconds_count", route="/healthz")
                assert healthz == started + health_checks
                assert value(found, "badges_events_accepted_total", channel="rest") == 1
                # Both processes' tails, each its own series.
                tails = {sample.labels["pid"] for sample in found if sample.name == "badges_outbox_tail_id"}
                assert len(tails) == 2, tails
                [answering] = {sample.labels["pid"] for sample in found if sample.name == "badges_key_cache_entries"}
                answered_by.add(answering)
                if len(answered_by) == 2:
                    break
                await asyncio.gather(*(scrape(url) for _ in range(4)))  # busy both, so the next may go to either
            assert len(answered_by) == 2, "every scrape went to one process"

            worker_url = f"http://127.0.0.1:{settings.worker_metrics_port}"

            async def applied() -> bool:
                try:
                    return value(samples(await scrape(worker_url)), "badges_events_applied_total") == 1
                except httpx.TransportError:
                    return False

            await eventually(applied, timeout=60)
            sdk = await scrape(f"http://127.0.0.1:{settings.worker_sdk_metrics_port}")
            assert any(name.startswith("temporal_") for name in names(sdk))

            # Every metric the deployment guide names is in one of the scrapes.
            scraped = names(await scrape(url)) | names(await scrape(worker_url)) | names(sdk)
            documented = set(DOCUMENTED.findall((ROOT / "docs" / "deployment.md").read_text()))
            assert len(documented) >= 20
            # A family with no samples yet (no provider has synced) is there by its name alone.
            missing = {
                name
                for name in documented
                if name not in scraped
                and not any(name + suffix in scraped or name.removesuffix(suffix) in scraped for suffix in SUFFIXES)
            }
            assert not missing, f"docs/deployment.md names metrics no scrape has: {sorted(missing)}"
    finally:
        stop(worker)
        log.close()
