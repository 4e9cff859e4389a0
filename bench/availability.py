"""Availability, measured (issue 15): a rolling restart of every API and worker process under
steady load, and what the clients saw.

The stack: two API processes on one port (uvicorn's workers, sharing one listening socket), two
live workers and a batch worker. The load: members vote at a fixed total rate (`--rate`, half the
votes signed by the voting system, half on the member's own token), each vote posted again with
the same id until it is accepted, as a client does; every member follows their stream (SSE, or
the WebSocket for a share of them), resuming from the last id whenever it ends; members read their
badges at `--read-rate`. After `--before` seconds, each API process is replaced in turn (SIGHUP to
uvicorn's parent: a new process serves, then the old one gets SIGTERM and drains), then each
worker in turn (SIGTERM, wait for it to exit, start it again, wait until it polls), then the load
goes on for `--after` seconds and stops.

Prints JSON: every request the clients sent (each attempt, retries included) and the share
answered 2xx, failures by kind; the votes accepted and the share applied (the member's civic-voice
count equals their accepted votes: each counted exactly once); stream reconnects, gaps and
repeats; per restart, what the clients saw meanwhile (failures, the longest time no request
succeeded, the slowest vote to reach its stream); latency before, during and after the restarts;
the bare Temporal signal rate on the same server.

    .venv/bin/python -m bench.availability            # about 4 minutes
    .venv/bin/python -m bench.availability --quick    # about 2 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import re
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
import psycopg
from temporalio.client import Client
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from badges.domain.identity import user_badges_workflow_id
from bench.realtime import bare_signals
from bench.stack import Stack, running_stack
from bench.stats import latency_percentiles
from tests.integration.test_task_queues import queue_pollers
from tests.processes import start_worker
from tests.support import EventSystem, dev_token, real_time_event

# At most this many votes a minute from one member: the anti-gaming screen holds more than 30 a
# minute (by the workflow's clock) for review instead of counting them, and a restart can bunch them.
PER_MEMBER_PER_MINUTE = 24
RETRY_GAP = 0.25  # seconds before a failed vote is posted again (same id)
GIVE_UP = 120.0  # seconds after which a vote never accepted is reported as such
REQUEST_TIMEOUT = 10.0
CONVERGE = 300.0  # seconds the stack may take to apply and stream everything after the load stops
SETTLE = 5.0  # seconds of load between one restart and the next
MAX_LAG = 1.0  # seconds this client may fall behind its schedule before it skips votes
BARE_LIMIT = 120.0  # seconds the bare Temporal figure may take (a busy machine) before it is left out
CIVIC_VOICE = "civic-voice"  # counts every vote (tiers at 10, 50, 100)


@dataclass
class Attempt:
    sent: float  # loop time
    done: float
    kind: str  # event, read, stream
    outcome: str  # 2xx, 4xx, 429, 5xx, refused, reset, timeout, other
    error: str = ""  # the exception's type (a failure without an answer), or the problem's type slug


@dataclass
class Member:
    sub: str
    headers: dict[str, str]
    user_id: uuid.UUID
    websocket: bool
    accepted: list[float] = field(default_factory=list)  # first-post time of each accepted vote
    accepted_ids: set[str] = field(default_factory=set)
    counted: list[tuple[float, int]] = field(default_factory=list)  # (when, civic-voice value) seen on the stream
    received: list[int] = field(default_factory=list)  # stream ids in the order received
    connects: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    ends: Counter[str] = field(default_factory=Counter)  # how each stream connection ended


@dataclass
class Restart:
    component: str
    old_pid: int
    new_pid: int | None = None
    began: float = 0.0  # loop time: the signal (API: the new process appeared)
    exited: float = 0.0  # the old process gone
    ready: float = 0.0  # the new one serving (API: the old one gone, as uvicorn waits for the new first)


def note(text: str) -> None:
    """Progress on stderr (stdout holds only the JSON)."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def outcome_of(status: int) -> str:
    if 200 <= status < 300:
        return "2xx"
    if status == 429:
        return "429"
    return "5xx" if status >= 500 else "4xx"


def failure_kind(error: Exception) -> str:
    if isinstance(error, httpx.ConnectError | ConnectionRefusedError):
        return "refused"
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError | ConnectionResetError):
        return "reset"
    return "other"


class Load:
    def __init__(self, stack: Stack, http: httpx.AsyncClient, streams: httpx.AsyncClient, voting: EventSystem) -> None:
        self.stack = stack
        self.http = http
        self.streams = streams
        self.voting = voting
        self.members: list[Member] = []
        self.attempts: list[Attempt] = []
        self.never_accepted = 0
        self.server_errors: Counter[str] = Counter()  # status and problem type of each 5xx and 429
        self.skipped = 0  # votes the schedule held that this client was too slow to send
        self.posting = True
        self._tasks: set[asyncio.Task[None]] = set()
        self._followers: list[asyncio.Task[None]] = []
        self.loop = asyncio.get_running_loop()

    def now(self) -> float:
        return self.loop.time()

    async def join(self, count: int, ws_share: float) -> None:
        for n in range(count):
            sub = f"avail-{uuid.uuid4()}"
            headers = await dev_token(self.http, sub)
            me = await self.http.get("/v1/me", headers=headers)
            me.raise_for_status()
            self.members.append(Member(sub, headers, uuid.UUID(me.json()["userId"]), n < count * ws_share))
        self._followers = [asyncio.create_task(self.follow(member)) for member in self.members]
        await asyncio.wait_for(asyncio.gather(*(m.connected.wait() for m in self.members)), 60)

    async def post_at(self, rate: float, read_rate: float, until: asyncio.Event) -> None:
        """Votes at `rate` a second over the members in turn, reads at `read_rate`, until `until` is set."""
        began, n = self.now(), 0
        reads = 0
        while not until.is_set():
            n += 1
            if self.now() - (began + n / rate) > MAX_LAG:
                # This client fell behind its own schedule (a busy machine): the votes not sent
                # are counted, not sent in a burst later.
                skipped = int((self.now() - began) * rate) - n
                self.skipped += skipped
                n += skipped
            member = self.members[n % len(self.members)]
            self._spawn(self.vote(member, n))
            while read_rate and reads < (self.now() - began) * read_rate:
                reads += 1
                self._spawn(self.read(random.choice(self.members)))
            await asyncio.sleep(max(0.0, began + n / rate - self.now()))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def attempt(self, kind: str, request: Any) -> httpx.Response | None:
        sent = self.now()
        try:
            response: httpx.Response = await request
        except (httpx.HTTPError, OSError) as error:
            self.attempts.append(Attempt(sent, self.now(), kind, failure_kind(error), type(error).__name__))
            return None
        slug = ""
        if response.status_code >= 500 or response.status_code == 429:
            try:
                slug = str(response.json().get("type", "")).rsplit(":", 1)[-1].rsplit("/", 1)[-1]
            except ValueError:
                slug = response.text[:60]
            self.server_errors[f"{response.status_code} {slug}"] += 1
        self.attempts.append(Attempt(sent, self.now(), kind, outcome_of(response.status_code), slug))
        return response

    async def vote(self, member: Member, n: int) -> None:
        event = real_time_event(f"vote-{n}", member.sub, "voting", propositionId=f"p{n}")
        first = self.now()
        while True:
            if n % 2:
                response = await self.attempt("event", self.voting.post(event))
            else:
                response = await self.attempt("event", self.http.post("/v1/events", json=event, headers=member.headers))
            if response is not None and response.status_code in (200, 202):
                member.accepted.append(first)
                member.accepted_ids.add(event["id"])
                return
            if self.now() > first + GIVE_UP:
                self.never_accepted += 1
                return
            await asyncio.sleep(RETRY_GAP)

    async def read(self, member: Member) -> None:
        await self.attempt("read", self.http.get("/v1/me/badges", headers=member.headers))

    async def follow(self, member: Member) -> None:
        while True:
            pause = RETRY_GAP
            try:
                if member.websocket:
                    pause = await self.follow_ws(member)
                else:
                    pause = await self.follow_sse(member)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                member.ends[f"error:{type(error).__name__}"] += 1
            await asyncio.sleep(pause * random.uniform(1.0, 1.5))

    def seen(self, member: Member, message_id: int, kind: str, data: dict[str, Any]) -> None:
        member.received.append(message_id)
        if kind == "progress" and data.get("badgeId") == CIVIC_VOICE:
            member.counted.append((self.now(), int(data["value"])))

    async def follow_sse(self, member: Member) -> float:
        """One SSE connection; answers how long to wait before the next (the server's `retry`)."""
        # From the member's first message on, whatever was written before the stream opened.
        last = {"Last-Event-ID": str(member.received[-1] if member.received else 0)}
        sent = self.now()
        retry = RETRY_GAP
        answered = False
        try:
            async with self.streams.stream("GET", "/v1/me/stream", headers={**member.headers, **last}) as response:
                answered = True
                self.attempts.append(Attempt(sent, self.now(), "stream", outcome_of(response.status_code)))
                if response.status_code != 200:
                    member.ends[f"status:{response.status_code}"] += 1
                    return retry
                member.connects += 1
                member.connected.set()
                fields: dict[str, str] = {}
                async for line in response.aiter_lines():
                    if line == "":
                        if "retry" in fields:
                            retry = int(fields["retry"]) / 1000
                        if "id" in fields and "data" in fields:
                            self.seen(member, int(fields["id"]), fields.get("event", ""), json.loads(fields["data"]))
                        elif fields.get("event"):
                            member.ends[f"sse:{fields['event']}"] += 1
                        fields = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        fields[name] = value[1:] if value.startswith(" ") else value
                member.ends["sse:closed"] += 1
        except (httpx.HTTPError, OSError) as error:
            if not answered:
                self.attempts.append(Attempt(sent, self.now(), "stream", failure_kind(error), type(error).__name__))
            member.ends[f"sse:{failure_kind(error)}"] += 1
        return retry

    async def follow_ws(self, member: Member) -> float:
        query = f"?lastEventId={member.received[-1] if member.received else 0}"
        url = self.stack.api_url.replace("http://", "ws://", 1) + "/v1/me/ws" + query
        sent = self.now()
        try:
            async with connect(url, additional_headers=member.headers, open_timeout=REQUEST_TIMEOUT) as socket:
                self.attempts.append(Attempt(sent, self.now(), "stream", "2xx"))
                member.connects += 1
                member.connected.set()
                async for frame in socket:
                    message = json.loads(frame)
                    if isinstance(message.get("id"), int):
                        self.seen(member, message["id"], message["type"], message["data"])
        except InvalidStatus as error:
            self.attempts.append(Attempt(sent, self.now(), "stream", outcome_of(error.response.status_code)))
            return RETRY_GAP
        except ConnectionClosed as error:
            code = error.rcvd.code if error.rcvd is not None else "none"
            member.ends[f"ws:{code}"] += 1
            return RETRY_GAP
        except (OSError, TimeoutError) as error:
            self.attempts.append(Attempt(sent, self.now(), "stream", failure_kind(error), type(error).__name__))
            member.ends[f"ws:{failure_kind(error)}"] += 1
            return RETRY_GAP
        member.ends["ws:1000"] += 1
        return RETRY_GAP

    async def close(self) -> None:
        for task in self._followers:
            task.cancel()
        for task in self._followers:
            with contextlib.suppress(asyncio.CancelledError):
                await task


# --- restarts ------------------------------------------------------------------------------------


async def restart_api_processes(stack: Stack, load: Load) -> list[Restart]:
    """SIGHUP to uvicorn's parent: it starts a new process, waits until it serves, then SIGTERMs an
    old one (which drains) and waits for it to exit, one at a time. Watched from outside."""
    assert stack.api_process is not None
    parent = psutil.Process(stack.api_process.pid)

    def serving() -> set[int]:
        # uvicorn's worker processes, not multiprocessing's resource tracker beside them.
        found = set()
        for child in parent.children():
            with contextlib.suppress(psutil.Error):
                if "spawn_main" in " ".join(child.cmdline()):
                    found.add(child.pid)
        return found

    old = serving()
    restarts: dict[int, Restart] = {}
    seen_new: set[int] = set()
    stack.api_process.send_signal(signal.SIGHUP)
    deadline = load.now() + 300
    while load.now() < deadline:
        children = serving()
        for pid in children - old - seen_new:
            seen_new.add(pid)
            # The old process it replaces is the first of the old ones still running.
            waiting = sorted(pid for pid in old if pid not in restarts)
            if waiting:
                restarts[waiting[0]] = Restart("api", waiting[0], pid, began=load.now())
        for pid, restart in restarts.items():
            if pid not in children and not restart.exited:
                restart.exited = restart.ready = load.now()
        if len(restarts) == len(old) and all(r.exited for r in restarts.values()):
            break
        await asyncio.sleep(0.05)
    stack.pids["api"] = [parent.pid]
    return [restarts[pid] for pid in sorted(restarts, key=lambda p: restarts[p].began)]


async def restart_worker(stack: Stack, load: Load, index: int, temporal: Client) -> Restart:
    process, settings = stack.workers[index]
    restart = Restart("batch_worker" if settings.worker_queues == "batch" else "worker", process.pid, began=load.now())
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 120)
    restart.exited = load.now()
    replacement = start_worker(settings, stack.log)
    restart.new_pid = replacement.pid
    stack.workers[index] = (replacement, settings)
    stack.processes[stack.processes.index(process)] = replacement
    for name in ("workers", "batch_workers"):
        stack.pids[name] = [replacement.pid if pid == process.pid else pid for pid in stack.pids[name]]
    queue = settings.batch_queue if settings.worker_queues == "batch" else settings.task_queue
    pollers = queue_pollers(temporal, queue)
    while str(replacement.pid) not in {identity.split("@")[0] for identity in await pollers()}:
        if replacement.poll() is not None:
            raise SystemExit(f"worker {replacement.pid} exited with {replacement.returncode} while starting")
        await asyncio.sleep(0.1)
    restart.ready = load.now()
    return restart


# --- what the clients saw ------------------------------------------------------------------------


def latency(values: list[float]) -> dict[str, Any]:
    return {"count": len(values), **latency_percentiles(values)}


def event_to_update(members: list[Member]) -> list[tuple[float, float]]:
    """(posted at, ms until the member's stream showed it counted) for every applied vote: the k-th
    vote (by first post) is applied when the civic-voice count on the stream reaches k."""
    out = []
    for member in members:
        posted = sorted(member.accepted)
        k = 0
        for when, value in member.counted:
            while k < min(value, len(posted)):
                out.append((posted[k], (when - posted[k]) * 1000))
                k += 1
    return out


def window_of(sent: float, restarts: list[Restart]) -> str:
    """Which restart's window (from its signal to 1 s after its successor served) `sent` falls in."""
    for n, restart in enumerate(restarts, 1):
        if restart.began <= sent <= restart.ready + 1.0:
            return f"{restart.component} restart {n}"
    return "no restart"


def window(load: Load, began: float, ended: float, updates: list[tuple[float, float]]) -> dict[str, Any]:
    """What the clients saw from `began` to `ended`: failed requests, the longest time without any
    request answered 2xx, the slowest vote posted meanwhile to reach its stream."""
    inside = [a for a in load.attempts if began <= a.sent <= ended]
    successes = sorted(a.done for a in load.attempts if a.outcome == "2xx" and began - 5 <= a.done <= ended + 5)
    gaps = [b - a for a, b in itertools.pairwise(successes) if b >= began and a <= ended]
    return {
        "requests": len(inside),
        "failed": Counter(a.outcome for a in inside if a.outcome != "2xx"),
        "longest_without_success_ms": round(max(gaps, default=0.0) * 1000, 1),
        "slowest_vote_to_stream_ms": round(max((ms for at, ms in updates if began <= at <= ended), default=0.0), 1),
    }


async def explain_unapplied(
    db: psycopg.AsyncConnection[Any], temporal: Client, short: dict[str, tuple[Member, int]]
) -> dict[str, Any]:
    """Where the accepted votes of members short of their count went: held for review by the
    anti-gaming screen, set aside as dead letters, or neither (then the member's workflow: its
    status, and how many votes its current run was signalled)."""
    held: Counter[str] = Counter()
    dead: Counter[str] = Counter()
    workflows: Counter[str] = Counter()
    missing = signalled = 0
    for member, counted in short.values():
        cursor = await db.execute(
            "SELECT event_ids, reason FROM review_queue WHERE user_id = %s AND kind = 'held_burst'", (member.user_id,)
        )
        for ids, reason in await cursor.fetchall():
            held[re.sub(r"\d+", "N", reason)] += len(set(ids) & member.accepted_ids)
        cursor = await db.execute(
            "SELECT event_ids, reason FROM dead_letters WHERE user_id = %s AND kind = 'event'", (member.user_id,)
        )
        for ids, reason in await cursor.fetchall():
            dead[reason[:120]] += len(set(ids) & member.accepted_ids)
        handle = temporal.get_workflow_handle(user_badges_workflow_id(member.user_id))
        status = (await handle.describe()).status
        workflows[status.name if status is not None else "unknown"] += 1
        async for event in handle.fetch_history_events():
            attributes = event.workflow_execution_signaled_event_attributes
            if (
                event.HasField("workflow_execution_signaled_event_attributes")
                and attributes.signal_name == "record_event"
            ):
                signalled += 1
        missing += len(member.accepted) - counted
    return {
        "members": len(short),
        "votes": missing,
        "held_for_review": dict(held),
        "dead_letters": dict(dead),
        "workflows": dict(workflows),
        "record_event_signals_in_current_runs": signalled,
        "accepted_of_these_members": sum(len(m.accepted) for m, _ in short.values()),
    }


async def verify(load: Load, libpq_url: str, temporal: Client, converge: float = CONVERGE) -> dict[str, Any]:
    """Waits until every accepted vote is counted and streamed (at most `converge` s), then compares
    each member's civic-voice count with their accepted votes and their stream with the outbox."""
    async with await psycopg.AsyncConnection.connect(libpq_url, autocommit=True) as db:

        async def outbox(member: Member) -> list[tuple[int, str, dict[str, Any]]]:
            cursor = await db.execute(
                "SELECT id, kind, payload FROM outbox WHERE user_id = %s ORDER BY id", (member.user_id,)
            )
            return [(row[0], row[1], row[2]) for row in await cursor.fetchall()]

        def count(rows: list[tuple[int, str, dict[str, Any]]]) -> int:
            values = [p["value"] for _, kind, p in rows if kind == "progress" and p.get("badgeId") == CIVIC_VOICE]
            return int(values[-1]) if values else 0

        deadline = load.now() + converge
        while True:
            rows = {member.sub: await outbox(member) for member in load.members}
            done = all(
                count(rows[m.sub]) >= len(m.accepted) and (not rows[m.sub] or m.received[-1:] == [rows[m.sub][-1][0]])
                for m in load.members
            )
            if done or load.now() > deadline:
                break
            await asyncio.sleep(1.0)
        accepted = sum(len(m.accepted) for m in load.members)
        applied = sum(min(count(rows[m.sub]), len(m.accepted)) for m in load.members)
        short = {m.sub: (m, count(rows[m.sub])) for m in load.members if count(rows[m.sub]) < len(m.accepted)}
        unapplied = await explain_unapplied(db, temporal, short) if short else None
        over = sum(max(0, count(rows[m.sub]) - len(m.accepted)) for m in load.members)
        gaps = repeats = out_of_order = 0
        for member in load.members:
            ids = [row[0] for row in rows[member.sub]]
            received = member.received
            repeats += len(received) - len(set(received))
            out_of_order += sum(1 for a, b in itertools.pairwise(received) if b <= a)
            gaps += len(set(ids) - set(received))
        return {
            "accepted": accepted,
            "applied": applied,
            "applied_share": round(applied / accepted, 6) if accepted else None,
            "counted_more_than_accepted": over,
            "not_applied": unapplied,
            "never_accepted": load.never_accepted,
            "not_sent_client_behind": load.skipped,
            "stream_messages": sum(len(m.received) for m in load.members),
            "stream_messages_missing": gaps,
            "stream_messages_repeated": repeats,
            "stream_messages_out_of_order": out_of_order,
            "converged_in_s": round(load.now() - (deadline - converge), 1),
        }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def main(args: argparse.Namespace) -> None:
    members = math.ceil(args.rate * 60 / PER_MEMBER_PER_MINUTE)
    results: dict[str, Any] = {
        "config": {
            "rate_votes_per_s": args.rate,
            "read_rate_per_s": args.read_rate,
            "members": members,
            "ws_share": args.ws_share,
            "api_processes": args.api_processes,
            "workers": args.workers,
            "batch_workers": 1,
            "before_s": args.before,
            "after_s": args.after,
            "drain_s": args.drain,
        },
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": load_average()},
    }
    env = {"BADGES_API_DRAIN_SECONDS": str(args.drain)}
    with running_stack(workers=args.workers, api_processes=args.api_processes, extra_env=env) as stack:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        timeout = httpx.Timeout(REQUEST_TIMEOUT)
        async with (
            httpx.AsyncClient(base_url=stack.api_url, timeout=timeout, limits=limits) as http,
            httpx.AsyncClient(
                base_url=stack.api_url,
                timeout=httpx.Timeout(REQUEST_TIMEOUT, read=None),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            ) as streams,
        ):
            temporal = await Client.connect(stack.temporal_address)
            voting = await EventSystem.register(http, ["voting"])
            load = Load(stack, http, streams, voting)
            await load.join(members, args.ws_share)
            note(f"{members} members joined, their streams open; votes at {args.rate}/s")
            stop = asyncio.Event()
            posting = asyncio.create_task(load.post_at(args.rate, args.read_rate, stop))
            started = load.now()
            await asyncio.sleep(args.before)
            restarts_began = load.now()
            note("restarting the API processes (SIGHUP)")
            restarts = await restart_api_processes(stack, load)
            for index in range(len(stack.workers)):
                await asyncio.sleep(SETTLE)
                note(f"restarting worker {stack.workers[index][0].pid} (SIGTERM)")
                restarts.append(await restart_worker(stack, load, index, temporal))
            restarts_ended = load.now()
            note("restarts done: " + ", ".join(f"{r.component} {r.old_pid}->{r.new_pid}" for r in restarts))
            await asyncio.sleep(args.after)
            stop.set()
            await posting
            stopped = load.now()
            await load.drain()
            note("load stopped; waiting for every accepted vote to be counted and streamed")
            results["events"] = await verify(load, stack.settings.libpq_url, temporal, args.converge)
            await load.close()
            results["machine"]["load_average_at_end"] = load_average()

            attempts = load.attempts
            ok = sum(1 for a in attempts if a.outcome == "2xx")
            results["requests"] = {
                "sent": len(attempts),
                "answered_2xx": ok,
                "share_2xx": round(ok / len(attempts), 6) if attempts else None,
                "failures": dict(Counter(a.outcome for a in attempts if a.outcome != "2xx")),
                "server_errors": dict(load.server_errors),
                # Each failure's kind: request, outcome, the exception's type or the problem's slug,
                # and the restart whose window it was sent in (none: outside every window).
                "failures_by_error": dict(
                    Counter(
                        f"{a.kind} {a.outcome} {a.error or '-'} in {window_of(a.sent, restarts)}"
                        for a in attempts
                        if a.outcome != "2xx"
                    )
                ),
                # When each failure happened (seconds from the start of the load), to set beside the restarts.
                "failed_at_s": [
                    [round(a.sent - started, 2), a.kind, a.outcome, a.error] for a in attempts if a.outcome != "2xx"
                ][:200],
                "by_kind": {
                    kind: {
                        "sent": sum(1 for a in attempts if a.kind == kind),
                        "failed": dict(Counter(a.outcome for a in attempts if a.kind == kind and a.outcome != "2xx")),
                    }
                    for kind in ("event", "read", "stream")
                },
            }
            ends: Counter[str] = Counter()
            for member in load.members:
                ends.update(member.ends)
            results["streams"] = {
                "sse": sum(1 for m in load.members if not m.websocket),
                "websocket": sum(1 for m in load.members if m.websocket),
                "reconnects": sum(m.connects - 1 for m in load.members),
                "ends": dict(ends),
            }
            updates = event_to_update(load.members)
            results["restarts"] = [
                {
                    "component": r.component,
                    "began_at_s": round(r.began - started, 2),
                    "old_pid": r.old_pid,
                    "new_pid": r.new_pid,
                    "old_exited_after_s": round(r.exited - r.began, 2),
                    "new_serving_after_s": round(r.ready - r.began, 2),
                    **window(load, r.began, r.ready + 1.0, updates),
                }
                for r in restarts
            ]
            phases = {"before": (started, restarts_began), "during": (restarts_began, restarts_ended)}
            phases["after"] = (restarts_ended, stopped)
            results["latency_ms"] = {
                phase: {
                    "request": latency(
                        [(a.done - a.sent) * 1000 for a in attempts if a.kind != "stream" and began <= a.sent < ended]
                    ),
                    "vote_to_stream": latency([ms for at, ms in updates if began <= at < ended]),
                }
                for phase, (began, ended) in phases.items()
            }
            results["durations_s"] = {phase: round(ended - began, 1) for phase, (began, ended) in phases.items()}
        results["targets"] = {
            "requests_2xx_share_at_least": 0.9999,
            "requests_met": (results["requests"]["share_2xx"] or 0) >= 0.9999,
            "events_applied_share": 1.0,
            "events_met": results["events"]["applied_share"] == 1.0 and results["events"]["never_accepted"] == 0,
        }
        note("results: " + json.dumps(results, default=dict))  # kept if the bare figure never comes
        if args.bare_seconds:
            try:
                bare = bare_signals(stack, 50, args.bare_seconds)
                results["bare_temporal_signals"] = await asyncio.wait_for(bare, BARE_LIMIT)
            except TimeoutError:
                results["bare_temporal_signals"] = {"timed_out_after_s": BARE_LIMIT}
    print(json.dumps(results, indent=2, default=dict))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter phases: about 2 minutes in all")
    parser.add_argument("--rate", type=float, default=50.0, help="votes a second, over all members")
    parser.add_argument("--read-rate", type=float, default=10.0, help="badge reads a second")
    parser.add_argument("--ws-share", type=float, default=0.25, help="share of members streaming over the WebSocket")
    parser.add_argument("--before", type=float, default=30.0, help="seconds of load before the first restart")
    parser.add_argument("--after", type=float, default=30.0, help="seconds of load after the last restart")
    parser.add_argument("--drain", type=float, default=2.0, help="BADGES_API_DRAIN_SECONDS")
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="live workers (and one batch worker)")
    parser.add_argument(
        "--converge", type=float, default=CONVERGE, help="seconds the stack may take to catch up after the load"
    )
    parser.add_argument("--bare-seconds", type=float, default=5.0, help="0: no bare Temporal figure")
    args = parser.parse_args(argv)
    if args.quick:
        args.before, args.after = min(args.before, 15.0), min(args.after, 10.0)
    return args


if __name__ == "__main__":
    print(f"bench.availability: {' '.join(sys.argv[1:])}", file=sys.stderr)
    asyncio.run(main(parse_args()))
