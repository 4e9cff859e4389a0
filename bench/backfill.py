"""Backfill benchmark: many members link their banks at once; how soon each sees their figures,
and what that does to live events. Prints JSON.

- `link_to_dashboard`: N members (`--members`, default 1,000) each grant `open_banking` and
  `behaviour_tracking`, then link a sandbox persona (every persona in turn) through the API, all
  at once with at most `--concurrency` links in flight. Per member, the time from their link (the
  public-token exchange answered) to their first dashboard with figures (`GET /v1/me/dashboard`
  `ready` with a complete month): p50 / p95 / p99 / max, per persona too; the wall time from the
  first link to the last dashboard, members per second, failures and why, and the CPU each
  component spent meanwhile.
- `realtime_during_backfill`: bench.realtime's warm scenario (`--rate` events/s for
  `--duration` s, its members on SSE or the WebSocket) alone, then again in the same stack while
  N new members link and backfill (their linking starts `--head-start` s before the first event):
  event→update p50 / p99 of both, the backfill's own figures as above, and the bare Temporal
  signal throughput against the same server, as bench.realtime reports it.

The dashboards are read cheaply: one query over `member_insights` every 0.5 s says whose
evaluation changed since the last look, and only those members' dashboards are read through the
API (about two reads a member in all), so the reading does not load the stack it measures.

    .venv/bin/python -m bench.backfill                                   # both, 1,000 members
    .venv/bin/python -m bench.backfill --members 50 --duration 10        # a quick look
    .venv/bin/python -m bench.backfill --scenarios link_to_dashboard
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from badges.api.auth import issue_token
from bench.realtime import MEMBER_SCRIPT, bare_signals, run_scenario
from bench.stack import Stack, running_stack, settle
from bench.stats import percentile
from bench.sync import PERSONAS, api_and_bank, consent_all, first_sync_seconds, link_bank

SCOPES = ("open_banking", "behaviour_tracking")
WATCH_INTERVAL_S = 0.5
DASHBOARD_READS_IN_FLIGHT = 16
SCENARIOS = ("link_to_dashboard", "realtime_during_backfill")


@dataclass
class Linker:
    """One member linking their bank, and what the benchmark saw of them (monotonic seconds)."""

    token: str
    persona: str
    user_id: uuid.UUID | None = None
    seen_seq: int = 0  # their newest evaluation the benchmark has looked at
    link_started: float | None = None
    linked_at: float | None = None
    ready_at: float | None = None
    failure: str | None = None
    state: str = "not linked"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def waiting(self) -> bool:
        return self.ready_at is None and self.failure is None


async def arrive(stack: Stack, client: httpx.AsyncClient, count: int, concurrency: int) -> list[Linker]:
    """`count` new members, each consenting to open banking and behaviour tracking (their
    consents recorded, and the empty first evaluations the consents start run and settled)."""
    run = uuid.uuid4().hex[:8]
    members = [
        Linker(issue_token(stack.settings, f"backfill-{run}-{n}@example.com", ["user"]), PERSONAS[n % len(PERSONAS)])
        for n in range(count)
    ]
    gate = asyncio.Semaphore(concurrency)

    async def known(member: Linker) -> None:
        async with gate:
            response = await client.get("/v1/me", headers=member.headers)
            response.raise_for_status()
            member.user_id = uuid.UUID(response.json()["userId"])

    await asyncio.gather(*(known(member) for member in members))
    await consent_all(client, [member.token for member in members], concurrency, SCOPES)
    user_ids = [member.user_id for member in members]
    async with await psycopg.AsyncConnection.connect(stack.settings.libpq_url, autocommit=True) as db:
        deadline = time.monotonic() + 300
        while (granted := await consents_recorded(db, user_ids)) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
    if granted < count:
        raise SystemExit(f"only {granted} of {count} members' consents were recorded")
    await settle(stack, limit=300)
    return members


async def consents_recorded(db: psycopg.AsyncConnection[Any], user_ids: list[uuid.UUID | None]) -> int:
    cursor = await db.execute(
        "SELECT count(*) FROM consents WHERE scope = 'behaviour_tracking' AND user_id = ANY(%s)", (user_ids,)
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def evaluation_seqs(db: psycopg.AsyncConnection[Any], user_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Each member's newest stored evaluation (its sequence number); absent: none yet."""
    cursor = await db.execute("SELECT user_id, seq FROM member_insights WHERE user_id = ANY(%s)", (user_ids,))
    return {row[0]: int(row[1]) for row in await cursor.fetchall()}


async def connection_states(db: psycopg.AsyncConnection[Any], user_ids: list[uuid.UUID | None]) -> dict[Any, str]:
    """Where each member's bank connection stands: its status, last error, and whether it synced."""
    cursor = await db.execute(
        "SELECT user_id, status, last_error, last_synced_at IS NOT NULL FROM bank_connections WHERE user_id = ANY(%s)",
        (user_ids,),
    )
    return {
        row[0]: f"connection {row[1]}" + (f", {row[2]}" if row[2] else "") + (", synced" if row[3] else ", not synced")
        for row in await cursor.fetchall()
    }


async def link_one(client: httpx.AsyncClient, bank: httpx.AsyncClient, member: Linker, gate: asyncio.Semaphore) -> None:
    async with gate:
        member.link_started = time.monotonic()
        try:
            await link_bank(client, bank, member.token, member.persona)
        except httpx.HTTPStatusError as refused:
            request = refused.request
            member.failure = f"link refused: {request.method} {request.url.path} {refused.response.status_code}"
            return
        except (httpx.HTTPError, KeyError, ValueError) as error:  # no answer, or not the one expected
            member.failure = f"link failed: {type(error).__name__}"
            return
        member.linked_at = time.monotonic()
        member.state = "linked, no evaluation since"


class DashboardWatch:
    """Reads a member's dashboard through the API only when their stored evaluation changed."""

    def __init__(self, client: httpx.AsyncClient, db: psycopg.AsyncConnection[Any]) -> None:
        self.client = client
        self.db = db
        self.reads = 0
        self.gate = asyncio.Semaphore(DASHBOARD_READS_IN_FLIGHT)

    async def baseline(self, members: list[Linker]) -> None:
        """The evaluations before the links (the consents' empty ones) are not news."""
        seqs = await evaluation_seqs(self.db, [m.user_id for m in members if m.user_id is not None])
        for member in members:
            member.seen_seq = seqs.get(member.user_id, 0) if member.user_id is not None else 0

    async def look(self, members: list[Linker]) -> None:
        """One look: the linked members still waiting whose evaluation changed get a dashboard read."""
        linked = {m.user_id: m for m in members if m.waiting and m.linked_at is not None and m.user_id is not None}
        if not linked:
            return
        seqs = await evaluation_seqs(self.db, list(linked))
        changed = [(linked[user_id], seq) for user_id, seq in seqs.items() if seq > linked[user_id].seen_seq]
        await asyncio.gather(*(self.read(member, seq) for member, seq in changed))

    async def read(self, member: Linker, seq: int) -> None:
        async with self.gate:
            try:
                response = await self.client.get("/v1/me/dashboard", headers=member.headers)
            except httpx.HTTPError as error:
                member.state = f"dashboard read failed: {type(error).__name__}"
                return
            finally:
                self.reads += 1
        member.seen_seq = seq
        if response.status_code != 200:
            member.state = f"dashboard answered {response.status_code}"
            return
        board = response.json()
        if board["status"] == "ready" and any(month["complete"] for month in board["months"]):
            member.ready_at = time.monotonic()
        else:
            member.state = f"evaluated, dashboard {board['status']} without a complete month"


async def link_and_watch(
    stack: Stack,
    client: httpx.AsyncClient,
    bank: httpx.AsyncClient,
    members: list[Linker],
    concurrency: int,
    timeout: float,
) -> dict[str, Any]:
    """Link every member's bank at once (at most `concurrency` in flight) and wait for each one's
    first dashboard with figures, at most `timeout` seconds from the first link."""
    async with await psycopg.AsyncConnection.connect(stack.settings.libpq_url, autocommit=True) as db:
        watch = DashboardWatch(client, db)
        await watch.baseline(members)
        cpu_before = stack.cpu_seconds()
        started = time.monotonic()
        gate = asyncio.Semaphore(concurrency)
        linking = asyncio.gather(*(link_one(client, bank, member, gate) for member in members))
        while any(member.waiting for member in members) and time.monotonic() - started < timeout:
            await watch.look(members)
            await asyncio.sleep(WATCH_INTERVAL_S)
        await linking
        ended = time.monotonic()
        cpu_after = stack.cpu_seconds()
        late = [member for member in members if member.waiting]
        connections = await connection_states(db, [member.user_id for member in late])
        for member in late:
            where = connections.get(member.user_id, "no connection stored")
            member.failure = f"no dashboard with figures in {timeout:g} s: {member.state} ({where})"
    synced = await asyncio.to_thread(first_sync_seconds, stack.settings.libpq_url)
    return backfill_figures(members, started, ended, watch.reads, concurrency) | {
        # Where the wait goes: the connection's creation to its sync stored (the server's clock);
        # the rest of link→dashboard is the evaluation's queue and work.
        "link_to_synced_s": seconds_percentiles(synced),
        "cpu_seconds": {name: round(cpu_after[name] - cpu_before.get(name, 0.0), 1) for name in cpu_after},
    }


def backfill_figures(
    members: list[Linker], started: float, ended: float, reads: int, concurrency: int
) -> dict[str, Any]:
    ready = [member for member in members if member.ready_at is not None]
    waits = [member.ready_at - member.linked_at for member in ready if member.ready_at and member.linked_at]
    links = [m.linked_at - m.link_started for m in members if m.linked_at is not None and m.link_started is not None]
    last_ready = max((member.ready_at for member in ready if member.ready_at), default=ended)
    linked_all = max((member.linked_at for member in members if member.linked_at), default=started)
    wall = last_ready - started
    by_persona = {
        persona: [m.ready_at - m.linked_at for m in ready if m.persona == persona and m.ready_at and m.linked_at]
        for persona in PERSONAS
    }
    return {
        "members": len(members),
        "ready": len(ready),
        "failed": len(members) - len(ready),
        "failures": dict(Counter(member.failure for member in members if member.failure).most_common()),
        "link_to_dashboard_s": seconds_percentiles(waits),
        "by_persona": {
            persona: {"ready": len(found), **seconds_percentiles(found)} for persona, found in by_persona.items()
        },
        "link_request_s": {"p50": percentile(links, 50), "p99": percentile(links, 99)},
        "seconds_to_link_all": round(linked_all - started, 1),
        "seconds_first_link_to_last_dashboard": round(wall, 1),
        "members_per_s": round(len(ready) / wall, 2) if wall > 0 else None,
        "client": {
            "links_in_flight": concurrency,
            "dashboard_reads_in_flight": DASHBOARD_READS_IN_FLIGHT,
            "evaluation_watch_interval_s": WATCH_INTERVAL_S,
            "dashboard_reads": reads,
            "dashboard_reads_per_member": round(reads / max(1, len(members)), 2),
        },
    }


def seconds_percentiles(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": round(max(values), 1) if values else None,
    }


async def link_to_dashboard(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    async with api_and_bank(stack, args.concurrency) as (client, bank):
        members = await arrive(stack, client, args.members, args.concurrency)
        result = await link_and_watch(stack, client, bank, members, args.concurrency, args.timeout)
    return {"scenario": "link_to_dashboard", **result}


async def realtime_during_backfill(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    events = int(args.rate * args.duration)
    alone = await run_scenario(stack, "warm", args.rate, events, len(MEMBER_SCRIPT), args.ws_share)
    print(json.dumps({"alone": alone}), file=sys.stderr, flush=True)
    async with api_and_bank(stack, args.concurrency) as (client, bank):
        members = await arrive(stack, client, args.members, args.concurrency)
        backfill: asyncio.Task[dict[str, Any]] | None = None
        window: list[float] = []  # when the linking began, when the events began (monotonic)

        async def start_backfill() -> None:
            nonlocal backfill
            window.append(time.monotonic())
            backfill = asyncio.create_task(link_and_watch(stack, client, bank, members, args.concurrency, args.timeout))
            await asyncio.sleep(args.head_start)
            window.append(time.monotonic())

        during = await run_scenario(
            stack,
            "warm",
            args.rate,
            events,
            len(MEMBER_SCRIPT),
            args.ws_share,
            before_load=start_backfill,
            stages=args.stages,
        )
        assert backfill is not None
        backfilled = await backfill
    bare = await bare_signals(stack, max(alone["members"], during["members"]), args.bare_seconds)
    linking_began, events_began = window
    events_ended = events_began + args.duration
    return {
        "scenario": "realtime_during_backfill",
        "event_to_update_ms": {
            "alone": pick(alone["event_to_update_ms"], "p50", "p99"),
            "during_backfill": pick(during["event_to_update_ms"], "p50", "p99"),
        },
        # The events' sending window, in seconds from the start of the linking, and how much of
        # the backfill fell inside it: links answered, and first dashboards with figures (each
        # one the end of a member's sync and evaluation).
        "events_window_s": [round(events_began - linking_began, 1), round(events_ended - linking_began, 1)],
        "backfill_during_events": {
            "linked": sum(1 for m in members if m.linked_at and events_began <= m.linked_at <= events_ended),
            "dashboards_ready": sum(1 for m in members if m.ready_at and events_began <= m.ready_at <= events_ended),
        },
        "alone": alone,
        "during_backfill": during,
        "backfill": backfilled,
        # As bench.realtime reports it: bare signals against the same server, after the runs.
        "bare_temporal_signals": bare,
    }


def pick(figures: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: figures[key] for key in keys}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--members", type=int, default=1000, help="members linking their banks at once")
    parser.add_argument("--concurrency", type=int, default=32, help="links (and set-up requests) in flight at once")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds from the first link to wait for all")
    parser.add_argument("--rate", type=float, default=100, help="real-time events per second (warm)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of real-time load")
    parser.add_argument("--head-start", type=float, default=0.0, help="seconds the linking starts before the events")
    parser.add_argument("--ws-share", type=float, default=0.3, help="share of real-time members on the WebSocket")
    parser.add_argument("--bare-seconds", type=float, default=10.0)
    parser.add_argument(
        "--stages", action="store_true", help="the run during the backfill: each stage of an event's latency"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes on the live task queue")
    parser.add_argument(
        "--batch-workers", type=int, default=1, help="worker processes on the batch queue (0: the live ones poll both)"
    )
    parser.add_argument("--api-processes", type=int, default=1)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    results: dict[str, Any] = {"scenarios": []}
    for name in args.scenarios:
        # Each in a stack of its own, so one's members and their workflows do not weigh on the other.
        with running_stack(
            workers=args.workers, api_processes=args.api_processes, bank=True, batch_workers=args.batch_workers
        ) as stack:
            scenario = link_to_dashboard if name == "link_to_dashboard" else realtime_during_backfill
            outcome = asyncio.run(scenario(stack, args))
        results["scenarios"].append(outcome)
        print(json.dumps({"finished": name}), file=sys.stderr, flush=True)
    results["config"] = {
        "members": args.members,
        "rate": args.rate,
        "duration_s": args.duration,
        "head_start_s": args.head_start,
        "workers": args.workers,
        "batch_workers": args.batch_workers,
        "api_processes": args.api_processes,
        "ws_share": args.ws_share,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
