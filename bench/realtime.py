"""Real-time path benchmark: events at a sustained rate while members listen for their progress.

Most members post events over HTTP and listen over SSE; a share of them (`--ws-share`) does both
over one WebSocket (`/v1/me/ws`, events acknowledged on the socket). Prints JSON: per scenario,
events accepted/s, updates delivered/s, event→update latency percentiles (all, and per transport),
the worker's and the API's data-key cache hit rates (from their Prometheus endpoints); bare
Temporal signal throughput against the same server; the saturation point.

    .venv/bin/python -m bench.realtime                 # the full set (a few minutes)
    .venv/bin/python -m bench.realtime --rates 100 --duration 10 --cold-rates
    .venv/bin/python -m bench.realtime --rates 100 --duration 20 --cold-rates --stages

`--stages` also breaks each warm event's latency into the stages of its path, from the bench's
own clock, PostgreSQL (the receipt's and the outbox row's times) and the member workflow's
Temporal history, and samples what PostgreSQL's backends wait for meanwhile (`stages_ms`,
`db_waits`): where the time goes when the tail grows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import aiohttp
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Worker

from badges.api.auth import issue_token
from badges.domain.identity import user_badges_workflow_id
from bench.bare_workflow import BareSignalWorkflow
from bench.stack import Stack, running_stack, settle
from bench.stats import percentile
from tests.support import real_time_event

# Per member: every event raises one badge's count by one, and no count passes its target, so
# each event shows up as exactly one progress value on the member's stream.
MEMBER_SCRIPT = [
    ("tool_usage", "calculator-explorer"),
    ("attendance", "regular-attendee"),
    ("voting", "active-voter"),
] * 3 + [("voting", "active-voter")] * 2


@dataclass
class Member:
    sub: str
    headers: dict[str, str]
    websocket: aiohttp.ClientWebSocketResponse | None = None  # set: this member uses the WebSocket
    # Per badge, the events not yet seen in an update: (the badge's count after it, sent at, event id).
    sent: dict[str, list[tuple[int, float, str]]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    acks: dict[str, asyncio.Future[str]] = field(default_factory=dict)


@dataclass
class Measurements:
    latencies_ms: list[float] = field(default_factory=list)
    ws_latencies_ms: list[float] = field(default_factory=list)
    accept_ms: list[float] = field(default_factory=list)
    accepted: int = 0
    failed: int = 0
    delivered: int = 0
    # Each event's marks (wall-clock seconds) and badge count, by event id (`--stages`).
    times: dict[str, dict[str, Any]] = field(default_factory=dict)

    def progress(self, member: Member, data: dict[str, Any], now: float) -> None:
        """A progress update reached the member: every event it accounts for has arrived."""
        self.delivered += 1
        pending = member.sent[data["badgeId"]]
        while pending and pending[0][0] <= data["value"]:
            _, sent_at, event_id = pending.pop(0)
            self.latencies_ms.append((now - sent_at) * 1000)
            self.times.setdefault(event_id, {})["received"] = time.time()
            if member.websocket is not None:
                self.ws_latencies_ms.append((now - sent_at) * 1000)


KEY_CACHE_COUNTERS = ("badges_key_cache_hits_total", "badges_key_cache_misses_total")


async def key_cache_counts(stack: Stack) -> dict[str, dict[str, float]]:
    """Each component's key-cache hits and misses so far (summed over its processes), from their
    Prometheus endpoints."""
    counts: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession() as http:
        for component, urls in stack.metrics_urls.items():
            totals = dict.fromkeys(KEY_CACHE_COUNTERS, 0.0)
            for url in urls:
                async with http.get(url) as response:
                    for line in (await response.text()).splitlines():
                        name, _, value = line.partition(" ")
                        if name in totals:
                            totals[name] += float(value)
            counts[component] = totals
    return counts


# The Temporal server's counters that say what an event costs it: calls into each of its services,
# persistence operations and queue tasks, by operation.
SERVER_COUNTERS = ("service_requests_total", "persistence_requests_total", "task_requests_total")


async def server_operations(stack: Stack) -> dict[str, float]:
    """The Temporal dev server's operation counters so far, keyed `metric/service/operation`."""
    counts: dict[str, float] = {}
    async with aiohttp.ClientSession() as http:
        for url in stack.metrics_urls.get("temporal", []):
            async with http.get(url) as response:
                text = await response.text()
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name in SERVER_COUNTERS:
                        labels = sample.labels
                        key = f"{sample.name}/{labels.get('service_name', '')}/{labels.get('operation', '')}"
                        counts[key] = counts.get(key, 0.0) + sample.value
    return counts


async def pg_transactions(libpq_url: str) -> float:
    async with await psycopg.AsyncConnection.connect(libpq_url, autocommit=True) as connection:
        row = await (
            await connection.execute(
                "select xact_commit + xact_rollback from pg_stat_database where datname = current_database()"
            )
        ).fetchone()
    return float(row[0]) if row else 0.0


def per_event(
    before: dict[str, float], after: dict[str, float], events: int, *, least: float = 0.05
) -> dict[str, float]:
    """What rose between two counts, per event, largest first (only what is at least `least` an event)."""
    rises = {key: (value - before.get(key, 0.0)) / max(events, 1) for key, value in after.items()}
    return {key: round(rise, 2) for key, rise in sorted(rises.items(), key=lambda kv: -kv[1]) if rise >= least}


def key_cache_hit_rates(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, dict[str, Any]]:
    """Per component, the key-cache lookups between two scrapes and the share answered from memory."""
    rates: dict[str, dict[str, Any]] = {}
    for component, counts in after.items():
        hits = counts[KEY_CACHE_COUNTERS[0]] - before[component][KEY_CACHE_COUNTERS[0]]
        misses = counts[KEY_CACHE_COUNTERS[1]] - before[component][KEY_CACHE_COUNTERS[1]]
        rates[component] = {
            "hits": int(hits),
            "misses": int(misses),
            "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
        }
    return rates


async def listen(client: aiohttp.ClientSession, member: Member, measured: Measurements, ready: asyncio.Event) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with client.get("/v1/me/stream", headers=member.headers, timeout=timeout) as response:
        response.raise_for_status()
        ready.set()
        kind = ""
        async for raw in response.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "progress":
                measured.progress(member, json.loads(line[5:]), time.perf_counter())


async def listen_ws(
    client: aiohttp.ClientSession, member: Member, measured: Measurements, ready: asyncio.Event
) -> None:
    async with client.ws_connect("/v1/me/ws", headers=member.headers, heartbeat=None) as websocket:
        member.websocket = websocket
        ready.set()
        async for frame in websocket:
            message = json.loads(frame.data)
            if message["type"] == "progress":
                measured.progress(member, message["data"], time.perf_counter())
            elif message["type"] in ("ack", "error") and message.get("id") in member.acks:
                future = member.acks.pop(message["id"])
                if not future.done():
                    future.set_result(message.get("status", message.get("code", "error")))


async def post_event(
    client: aiohttp.ClientSession, member: Member, type_: str, badge_id: str, measured: Measurements
) -> None:
    member.counts[badge_id] += 1
    body = real_time_event(uuid.uuid4().hex, member.sub, type_)
    started = time.perf_counter()
    measured.times[body["id"]] = {"sent": time.time(), "badge": badge_id, "count": member.counts[badge_id]}
    member.sent[badge_id].append((member.counts[badge_id], started, body["id"]))
    try:
        if member.websocket is not None:
            acked = member.acks[body["id"]] = asyncio.get_running_loop().create_future()
            await member.websocket.send_json({"type": "event", "event": body})
            ok = await asyncio.wait_for(acked, 60) == "accepted"
        else:
            async with client.post("/v1/events", json=body, headers=member.headers) as response:
                await response.read()
                ok = response.status == 202
    except (aiohttp.ClientError, TimeoutError):
        ok = False
    if ok:
        measured.accepted += 1
        measured.accept_ms.append((time.perf_counter() - started) * 1000)
    else:
        measured.failed += 1
        member.sent[badge_id].remove((member.counts[badge_id], started, body["id"]))


async def run_scenario(
    stack: Stack,
    name: str,
    rate: float,
    events: int,
    events_per_member: int,
    ws_share: float,
    *,
    before_load: Callable[[], Awaitable[None]] | None = None,
    stages: bool = False,
) -> dict[str, Any]:
    """`before_load`: awaited once the members are ready, just before the first event (other work
    a caller wants running beside the events, e.g. bench.backfill's members linking their banks)."""
    # What the previous scenario left (an overloaded one leaves minutes of accepted events for the
    # workers) is worked off first: a cold scenario right after 300/s measured that backlog.
    drained_s = await settle(stack, limit=DRAIN_LIMIT_SECONDS)
    members_needed = math.ceil(events / events_per_member)
    connector = aiohttp.TCPConnector(limit=members_needed + 300)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(stack.api_url, connector=connector, timeout=timeout) as client:
        members = []
        for _ in range(members_needed):
            sub = f"bench-{uuid.uuid4()}"
            token = issue_token(stack.settings, sub, ["user"])
            members.append(Member(sub, {"Authorization": f"Bearer {token}"}))
        measured = Measurements()
        # Opening a stream creates the member and starts their workflow ahead of the first event.
        listeners = []
        ws_members = round(ws_share * len(members))
        for start in range(0, len(members), 100):
            ready = [asyncio.Event() for _ in members[start : start + 100]]
            for n, (member, event) in enumerate(zip(members[start : start + 100], ready, strict=True)):
                # Every k-th member on the WebSocket, so both transports see the same load shape.
                on_ws = ws_members and (start + n) % max(1, round(len(members) / ws_members)) == 0
                listener = listen_ws if on_ws else listen
                listeners.append(asyncio.create_task(listener(client, member, measured, event)))
            await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), 60)
        if name == "warm":
            # Warm: the members' workflows, started as their streams opened, have run their first
            # tasks and wait for events (with 180+ members that takes a few seconds here).
            settled_s = await settle(stack)
        else:
            # Cold: the events come while the new members' workflows are still starting, as when
            # members arrive in a crowd.
            settled_s = 2.0
            await asyncio.sleep(settled_s)

        if before_load is not None:
            await before_load()
        posts = []
        waits = asyncio.create_task(sample_db_waits(stack.settings.libpq_url)) if stages else None
        keys_before = await key_cache_counts(stack)
        if stages:
            server_before = await server_operations(stack)
            pg_before = await pg_transactions(stack.settings.libpq_url)
        cpu_before = stack.cpu_seconds()
        began = time.perf_counter()
        for i in range(events):
            member = members[i % members_needed]
            type_, badge_id = MEMBER_SCRIPT[(i // members_needed) % len(MEMBER_SCRIPT)]
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            posts.append(asyncio.create_task(post_event(client, member, type_, badge_id, measured)))
        await asyncio.gather(*posts)
        sending_seconds = time.perf_counter() - began
        deadline = time.perf_counter() + 30
        while len(measured.latencies_ms) < measured.accepted and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - began
        cpu_used = {name: used - cpu_before[name] for name, used in stack.cpu_seconds().items()}
        db_waits = await stop_sampling(waits) if waits is not None else None
        keys_after = await key_cache_counts(stack)
        if stages:
            server_ops = per_event(server_before, await server_operations(stack), measured.accepted)
            pg_per_event = (await pg_transactions(stack.settings.libpq_url) - pg_before) / max(measured.accepted, 1)
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)

    outcome: dict[str, Any] = {
        "scenario": name,
        "offered_events_per_s": rate,
        "events": events,
        "members": members_needed,
        "sse_clients": sum(1 for m in members if m.websocket is None),
        "ws_clients": sum(1 for m in members if m.websocket is not None),
        "drained_s": drained_s,
        "settle_s": settled_s,
        "events_accepted_per_s": round(measured.accepted / sending_seconds, 1),
        "events_failed": measured.failed,
        "updates_delivered_per_s": round(measured.delivered / elapsed, 1),
        "updates_missing": measured.accepted - len(measured.latencies_ms),
        "event_to_update_ms": {
            q: percentile(measured.latencies_ms, n) for q, n in (("p50", 50), ("p95", 95), ("p99", 99))
        },
        # The same, for the members on the WebSocket only (event sent on the socket → update on it).
        "event_to_ws_ms": {
            q: percentile(measured.ws_latencies_ms, n) for q, n in (("p50", 50), ("p95", 95), ("p99", 99))
        },
        "accept_http_ms": {q: percentile(measured.accept_ms, n) for q, n in (("p50", 50), ("p99", 99))},
        # Data-key lookups while the events were sent and delivered, and the share from memory.
        "key_cache": key_cache_hit_rates(keys_before, keys_after),
        # Where the time goes: CPU milliseconds each component spent per accepted event.
        "cpu_ms_per_event": {
            name: round(1000 * used / max(measured.accepted, 1), 2) for name, used in cpu_used.items()
        },
    }
    if stages:
        outcome["stages_ms"] = await stage_breakdown(stack, measured.times)
        outcome["db_waits"] = db_waits
        # What an event costs the Temporal server, by operation (signal, workflow task poll, start
        # and completion; persistence writes; timer and transfer tasks), and PostgreSQL's
        # transactions (every component's, the bench's stream checks included).
        outcome["temporal_operations_per_event"] = server_ops
        outcome["postgres_transactions_per_event"] = round(pg_per_event, 2)
    return outcome


# An event's path as `--stages` cuts it: each stage is the time from the previous mark to its own.
STAGES = (
    ("claimed", "sent -> the API's receipt (HTTP or WebSocket, authentication, the rate limit)"),
    ("signalled", "-> the signal in the workflow's history (the receipt, encryption, Temporal's RPC)"),
    ("task_started", "-> the workflow task that takes it handed to the worker"),
    ("writing", "-> the transaction writing its progress begins (workflow code, local activity, writer queue)"),
    ("received", "-> the update at the member (commit, outbox tail, SSE or WebSocket)"),
)


async def stage_breakdown(stack: Stack, times: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each stage's percentiles over the events that reached their member. Marks come from the
    receipts (by event id), the member workflow's history (its signals in the order their
    receipts were taken, each with the next workflow task started) and the outbox (the first
    progress row of the event's badge to reach its count)."""
    async with await psycopg.AsyncConnection.connect(stack.settings.libpq_url, autocommit=True) as connection:
        receipts = await (
            await connection.execute(
                "SELECT event_id, user_id::text, extract(epoch FROM received_at)::float8 FROM event_receipts"
                " WHERE event_id = ANY(%s)",
                (list(times),),
            )
        ).fetchall()
        rows = await (
            await connection.execute(
                "SELECT user_id::text, payload->>'badgeId', (payload->>'value')::int,"
                " extract(epoch FROM created_at)::float8 FROM outbox WHERE kind = 'progress'"
            )
        ).fetchall()
    written: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for user_id, badge_id, value, created in rows:
        written[(user_id, badge_id)].append((value, created))
    claims: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for event_id, user_id, claimed in receipts:
        mark = times[event_id]
        mark["claimed"] = claimed
        later = [at for value, at in written[(user_id, mark["badge"])] if value >= mark["count"]]
        if later:
            mark["writing"] = min(later)
        claims[user_id].append((claimed, event_id))
    client = await Client.connect(stack.temporal_address)
    for user_id, member_claims in claims.items():
        history = await client.get_workflow_handle(user_badges_workflow_id(user_id)).fetch_history()
        events = [
            (event.WhichOneof("attributes"), event.event_time.ToDatetime(UTC).timestamp()) for event in history.events
        ]
        signals = [n for n, (kind, _) in enumerate(events) if kind == "workflow_execution_signaled_event_attributes"]
        for (_, event_id), n in zip(sorted(member_claims), signals, strict=False):
            times[event_id]["signalled"] = events[n][1]
            started = [at for kind, at in events[n:] if kind == "workflow_task_started_event_attributes"]
            if started:
                times[event_id]["task_started"] = started[0]
    marks = ["sent", *(stage for stage, _ in STAGES)]
    complete = [mark for mark in times.values() if all(name in mark for name in marks)]
    breakdown: dict[str, Any] = {"events": len(complete)}
    for (stage, meaning), previous in zip(STAGES, marks, strict=False):
        spans = [(mark[stage] - mark[previous]) * 1000 for mark in complete]
        breakdown[stage] = {q: percentile(spans, n) for q, n in (("p50", 50), ("p90", 90), ("p99", 99))} | {
            "what": meaning
        }
    return breakdown


async def sample_db_waits(libpq_url: str, every: float = 0.05) -> dict[str, float]:
    """Until cancelled, every `every` seconds: what the database's busy backends wait for. Returns
    the mean number of backends per wait (`-`: running or ready to run) and statement."""
    seen: Counter[str] = Counter()
    samples = 0
    async with await psycopg.AsyncConnection.connect(libpq_url, autocommit=True) as connection:
        try:
            while True:
                cursor = await connection.execute(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, '-')"
                    "       || ' ' || left(btrim(regexp_replace(query, '\\s+', ' ', 'g')), 40)"
                    "  FROM pg_stat_activity"
                    " WHERE state <> 'idle' AND pid <> pg_backend_pid() AND datname = current_database()"
                )
                seen.update(row[0] for row in await cursor.fetchall())
                samples += 1
                await asyncio.sleep(every)
        except asyncio.CancelledError:
            pass
    return {wait: round(count / max(samples, 1), 2) for wait, count in seen.most_common(8)}


async def stop_sampling(task: asyncio.Task[dict[str, float]]) -> dict[str, float]:
    task.cancel()
    return await task


async def bare_signals(stack: Stack, workflows: int, seconds: float, concurrency: int = 50) -> dict[str, Any]:
    # Core SDK logs go to Python logging (stderr), so stdout holds only the JSON figures.
    logging_config = LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporal.core")),
    )
    runtime = Runtime(telemetry=TelemetryConfig(logging=logging_config))
    client = await Client.connect(stack.temporal_address, runtime=runtime)
    task_queue = f"bare-{uuid.uuid4()}"
    async with Worker(client, task_queue=task_queue, workflows=[BareSignalWorkflow]):
        handles = [
            await client.start_workflow(BareSignalWorkflow.run, id=f"bare/{uuid.uuid4()}", task_queue=task_queue)
            for _ in range(workflows)
        ]
        sent = 0
        stop_at = time.perf_counter() + seconds

        async def sender(offset: int) -> None:
            nonlocal sent
            i = offset
            while time.perf_counter() < stop_at:
                await handles[i % workflows].signal(BareSignalWorkflow.bump)
                sent += 1
                i += concurrency

        began = time.perf_counter()
        await asyncio.gather(*(sender(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - began
        for handle in handles:
            await handle.terminate()
    return {"workflows": workflows, "concurrency": concurrency, "signals_per_s": round(sent / elapsed, 1)}


# At most this long for the stack to finish the previous scenario's work before the next begins.
DRAIN_LIMIT_SECONDS = 300.0


def sustained(outcome: dict[str, Any]) -> bool:
    p99 = outcome["event_to_update_ms"]["p99"]
    return (
        outcome["events_accepted_per_s"] >= 0.95 * outcome["offered_events_per_s"] and p99 is not None and p99 <= 2000
    )


async def main(args: argparse.Namespace) -> None:
    results: dict[str, Any] = {"scenarios": []}
    with running_stack(workers=args.workers, api_processes=args.api_processes) as stack:
        keys_at_start = await key_cache_counts(stack)
        for rate in args.rates:
            outcome = await run_scenario(
                stack, "warm", rate, int(rate * args.duration), len(MEMBER_SCRIPT), args.ws_share, stages=args.stages
            )
            results["scenarios"].append(outcome)
            print(json.dumps(outcome), file=sys.stderr, flush=True)
        # Saturation: the highest offered rate still accepted in full with p99 event→SSE within 2 s.
        warm = [s for s in results["scenarios"] if s["scenario"] == "warm"]
        results["saturation"] = {
            "last_sustained_rate": max((s["offered_events_per_s"] for s in warm if sustained(s)), default=None),
            "first_failing_rate": min((s["offered_events_per_s"] for s in warm if not sustained(s)), default=None),
            "rule": "accepted >= 95% of offered and p99 event->SSE <= 2000 ms",
        }
        for rate in args.cold_rates:
            outcome = await run_scenario(stack, "cold", rate, args.cold_members, 1, args.ws_share)
            results["scenarios"].append(outcome)
            print(json.dumps(outcome), file=sys.stderr, flush=True)
        # Over the whole run (members arriving included), before the bare-Temporal part.
        results["key_cache"] = key_cache_hit_rates(keys_at_start, await key_cache_counts(stack))
        members = max(s["members"] for s in results["scenarios"])
        results["bare_temporal_signals"] = await bare_signals(stack, members, args.bare_seconds)
        best = max(s["events_accepted_per_s"] for s in warm)
        results["our_path_vs_bare_signals"] = round(best / results["bare_temporal_signals"]["signals_per_s"], 3)
    results["config"] = {
        "workers": args.workers,
        "api_processes": args.api_processes,
        "duration_s": args.duration,
        "ws_share": args.ws_share,
    }
    print(json.dumps(results, indent=2))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[25, 50, 75, 100, 150, 200, 300])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of sustained load per rate")
    parser.add_argument("--cold-rates", type=float, nargs="*", default=[50, 100, 200], help="none: skip cold runs")
    parser.add_argument("--cold-members", type=int, default=1000)
    parser.add_argument("--bare-seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument("--ws-share", type=float, default=0.3, help="share of members on the WebSocket (0..1)")
    parser.add_argument(
        "--stages", action="store_true", help="warm scenarios: each stage's latency, and what the database waits for"
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
