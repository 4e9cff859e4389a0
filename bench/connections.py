"""Live connections benchmark: tens of thousands of members holding their streams open (SSE and
WebSocket, from separate client processes) against several API processes, while targeted updates
reach random connected members.

For each step (`--steps`, e.g. 10000 50000: connections held at once) it prints JSON: connections
held, the API processes' memory per connection (PSS, USS and RSS over the same processes idle; the
kernel's TCP memory beside it), every API process's garbage-collection pauses, and delivery latency
p50/p99 of two kinds of targeted update while all of them are connected:

- `event_to_update_ms`: an event posted (`POST /v1/events`) for a random connected member, to the
  progress update on that member's stream: the whole path (API, Temporal, the member's workflow,
  the outbox, the hub's fan-out). The probed members' workflows run a first event before the
  measured ones, so this measures fan-out at scale, not workflow start-up;
- `outbox_to_update_ms`: an outbox row (an insight) committed for a random connected member, to its
  arrival: the fan-out layer alone (each API process's tail of the outbox and its streams).

    .venv/bin/python -m bench.connections --steps 10000                # a few minutes
    .venv/bin/python -m bench.connections --steps 10000 50000 --api-processes 4

Each API process listens on its own port (one uvicorn process each, so the bench reads every
process's memory and `/metrics`, and no process is handed more than its share of the 20,000 files
it may open); connection i goes to process i mod P. Client process c sends from 127.0.0.(2+c), so
no source address runs out of ephemeral ports; each holds at most `--per-client` sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import multiprocessing
import os
import random
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from badges.heap import freeze_after_full_collections, freeze_survivors, gc_pauses
from bench.stats import GenerationPauses, latency_percentiles, parse_gc_pauses, parse_heap_objects

HOST = "127.0.0.1"
PAUSE_TARGET_SECONDS = 0.1


# --- the plan: which connection is whose, of which kind, to which process, from where ---------


@dataclass(frozen=True)
class Planned:
    index: int
    sub: str  # the member's token subject
    kind: str  # "sse" or "ws"
    api: int  # which API process (index into the ports)
    client: int  # which client process holds it


def plan_connections(total: int, *, members: int, api_processes: int, clients: int, ws_share: float) -> list[Planned]:
    """`total` connections of `members` members (member i % members; one each when equal), spread
    round-robin over the API processes and the client processes. WebSockets are spaced evenly
    (connection i is one when floor((i + 1) * share) passes floor(i * share)), so every prefix of
    the plan, and so every step, has the share."""
    planned = []
    for index in range(total):
        on_ws = math.floor((index + 1) * ws_share) > math.floor(index * ws_share)
        planned.append(
            Planned(
                index=index,
                sub=f"conn-{index % members}",
                kind="ws" if on_ws else "sse",
                api=index % api_processes,
                client=index % clients,
            )
        )
    return planned


def client_source(client: int) -> str:
    """Client c's loopback source address: 127.0.0.2, 127.0.0.3, ... (each address has its own
    ephemeral ports)."""
    if not 0 <= client < 250:
        raise ValueError("at most 250 client processes")
    return f"127.0.0.{2 + client}"


# --- memory ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    rss: int  # bytes
    pss: int
    uss: int  # private pages only: what the process alone holds


def parse_smaps_rollup(text: str) -> Memory:
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name.strip()] = int(parts[0]) * 1024
    return Memory(
        rss=fields["Rss"],
        pss=fields["Pss"],
        uss=fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
    )


def process_memory(pid: int) -> Memory:
    return parse_smaps_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())


def parse_sockstat(text: str) -> dict[str, int]:
    """TCP sockets in use and the pages of memory the kernel's TCP buffers hold (`/proc/net/sockstat`)."""
    for line in text.splitlines():
        if line.startswith("TCP:"):
            parts = line.split()[1:]
            values = dict(zip(parts[::2], (int(v) for v in parts[1::2]), strict=True))
            return {"inuse": values["inuse"], "mem_pages": values["mem"]}
    raise ValueError("no TCP line in sockstat")


def per_connection_kb(idle: Sequence[Memory], held: Sequence[Memory], connections: int) -> dict[str, float | None]:
    """What the API processes hold per connection: their memory at `connections` held minus the
    same processes idle, summed over processes, in KB (1,000 bytes)."""
    if connections <= 0:
        return {"pss": None, "uss": None, "rss": None}
    return {
        kind: round(
            sum(getattr(h, kind) - getattr(i, kind) for i, h in zip(idle, held, strict=True)) / connections / 1000, 1
        )
        for kind in ("pss", "uss", "rss")
    }


# --- garbage-collection pauses, from each process's /metrics -----------------------------------


def over_target(pauses: dict[str, GenerationPauses]) -> int:
    """Collections (all generations) that stopped the process longer than PAUSE_TARGET_SECONDS."""
    return sum(generation.over(PAUSE_TARGET_SECONDS) for generation in pauses.values())


def pauses_between(before: dict[str, GenerationPauses], after: dict[str, GenerationPauses]) -> dict[str, Any]:
    return {
        "collections": {g: p.count - before.get(g, GenerationPauses()).count for g, p in sorted(after.items())},
        "over_100ms": over_target(after) - over_target(before),
        # The gauge is the process's longest so far (start-up included).
        "longest_ms_so_far": {g: round(p.longest * 1000, 1) for g, p in sorted(after.items())},
        "longest_cpu_ms_so_far": {g: round(p.longest_cpu * 1000, 1) for g, p in sorted(after.items())},
    }


# --- the client processes -----------------------------------------------------------------------


@dataclass
class ClientPlan:
    client: int
    source: str
    ports: list[int]
    # (sub, kind, api, token) per connection, in the order they open
    connections: list[tuple[str, str, int, str]]
    concurrency: int = 100
    # The API process's garbage-collection policy in the client too (`--no-client-freeze`: without).
    freeze: bool = True


def client_process(plan: ClientPlan, commands: Connection, deliveries: Any) -> None:
    """Entry point of one client process: opens its connections when told, holds them, and puts
    every progress or insight it receives on `deliveries` as (sub, kind, data, wall-clock time)."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    # A client holding 12,500 sockets holds as many objects as an API process: untended, its own
    # full collections (hundreds of ms) were counted in the deliveries' latency. It gets the API
    # process's policy, and its pauses are reported beside the servers'.
    gc_pauses()
    if plan.freeze:
        freeze_after_full_collections()
    asyncio.run(Client(plan, commands, deliveries).run())


class Client:
    def __init__(self, plan: ClientPlan, commands: Connection, deliveries: Any) -> None:
        self.plan = plan
        self.commands = commands
        self.deliveries = deliveries
        self.started = 0
        self.opened = 0
        self.failed = 0
        self.dropped = 0
        self.errors: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        # Connections open now, and what opens each again (`churn`).
        self.live: dict[asyncio.Task[None], tuple[str, str, int, str]] = {}
        self.reconnected = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command, argument = await loop.run_in_executor(None, self.commands.recv)
            if command == "open":
                await self.open_until(argument)
                if self.plan.freeze:
                    freeze_survivors()  # what the connections hold, out of this process's walks
                self.commands.send(self.status())
            elif command == "churn":
                await self.churn(*argument)
                self.commands.send(self.status())
            elif command == "status":
                self.commands.send(self.status())
            elif command == "close":
                for task in self.tasks:
                    task.cancel()
                await asyncio.gather(*self.tasks, return_exceptions=True)
                self.commands.send(self.status())
                return

    def status(self) -> dict[str, Any]:
        pauses = gc_pauses().pauses()
        return {
            "client": self.plan.client,
            "opened": self.opened,
            "held": self.opened - self.dropped - self.reconnected,
            "failed": self.failed,
            "dropped": self.dropped,
            "reconnected": self.reconnected,
            "errors": dict(sorted(self.errors.items(), key=lambda item: -item[1])[:5]),
            "gc_full_collections": pauses[2].count,
            "gc_longest_ms": round(max(p.longest for p in pauses.values()) * 1000, 1),
            "gc_longest_cpu_ms": round(max(p.longest_cpu for p in pauses.values()) * 1000, 1),
        }

    async def open_until(self, count: int) -> None:
        gate = asyncio.Semaphore(self.plan.concurrency)
        pending = []
        for sub, kind, api, token in self.plan.connections[self.started : count]:
            self.started += 1
            await gate.acquire()
            ready = self.start(sub, kind, self.plan.ports[api], token)
            ready.add_done_callback(lambda _: gate.release())
            pending.append(ready)
        await asyncio.gather(*pending)

    def start(self, sub: str, kind: str, port: int, token: str) -> asyncio.Future[bool]:
        spec = (sub, kind, port, token)
        ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self.hold(sub, kind, port, token, ready))
        self.tasks.add(task)
        task.add_done_callback(self._ended)

        def opened(_: asyncio.Future[bool]) -> None:
            if ready.result() and not task.done():
                self.live[task] = spec

        ready.add_done_callback(opened)
        return ready

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.live.pop(task, None)

    async def churn(self, per_second: float, seconds: float) -> None:
        """Close random open connections and open them again, `per_second`, for `seconds`: what a
        process's heap keeps of connections that came and went shows at the same count held."""
        rng = random.Random(self.plan.client)
        loop = asyncio.get_running_loop()
        began = loop.time()
        n = 0
        while loop.time() - began < seconds:
            n += 1
            delay = began + n / per_second - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self.live:
                continue
            task = rng.choice(list(self.live))
            spec = self.live.pop(task)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.reconnected += 1
            await self.start(*spec)

    def _error(self, error: BaseException) -> None:
        name = type(error).__name__ + (f": {error}"[:80] if str(error) else "")
        self.errors[name] = self.errors.get(name, 0) + 1

    async def hold(self, sub: str, kind: str, port: int, token: str, ready: asyncio.Future[bool]) -> None:
        try:
            if kind == "sse":
                await self.hold_sse(sub, port, token, ready)
            else:
                await self.hold_ws(sub, port, token, ready)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # counted and named in the status
            self._error(error)
        if ready.done():
            self.dropped += 1
        else:
            self.failed += 1
            ready.set_result(False)

    async def hold_sse(self, sub: str, port: int, token: str, ready: asyncio.Future[bool]) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, port, local_addr=(self.plan.source, 0)), 60
        )
        try:
            writer.write(
                f"GET /v1/me/stream HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {token}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            status = await asyncio.wait_for(reader.readline(), 60)
            if b" 200 " not in status:
                raise ConnectionError(status.decode(errors="replace").strip() or "closed")
            while (await reader.readline()).strip():
                pass  # the response's headers
            self.opened += 1
            ready.set_result(True)
            kind = ""
            # Chunked transfer encoding: each event is one chunk, so its size lines sit between
            # whole SSE lines and match none of them.
            while line := await reader.readline():
                text = line.decode().rstrip("\r\n")
                if text.startswith("event:"):
                    kind = text[6:].strip()
                elif text.startswith("data:") and kind in ("progress", "insight"):
                    self.deliveries.put((sub, kind, json.loads(text[5:]), time.time()))
        finally:
            writer.close()

    async def hold_ws(self, sub: str, port: int, token: str, ready: asyncio.Future[bool]) -> None:
        from websockets.asyncio.client import connect

        async with connect(
            f"ws://{HOST}:{port}/v1/me/ws",
            additional_headers={"Authorization": f"Bearer {token}"},
            compression=None,
            ping_interval=None,  # the server pings; the client's library answers
            max_queue=4,
            open_timeout=60,
            local_addr=(self.plan.source, 0),
        ) as websocket:
            self.opened += 1
            ready.set_result(True)
            async for frame in websocket:
                message = json.loads(frame)
                if message.get("type") in ("progress", "insight"):
                    self.deliveries.put((sub, message["type"], message["data"], time.time()))


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Deliveries:
    """Updates the clients saw, by member, read from the clients' queue by a thread."""

    arrived: dict[tuple[str, str], list[tuple[dict[str, Any], float]]] = field(default_factory=dict)

    def add(self, sub: str, kind: str, data: dict[str, Any], at: float) -> None:
        self.arrived.setdefault((sub, kind), []).append((data, at))

    def first(self, sub: str, kind: str, matches: Any) -> float | None:
        for data, at in self.arrived.get((sub, kind), ()):
            if matches(data):
                return at
        return None


async def scrape(urls: Iterable[str]) -> list[str]:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        texts = []
        for url in urls:
            async with http.get(url) as response:
                texts.append(await response.text())
        return texts


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.deliveries = Deliveries()
        self.churned: dict[str, Any] | None = None

    async def main(self) -> dict[str, Any]:
        from bench.stack import running_stack, settle
        from tests.processes import start_api, stop
        from tests.support import free_port

        args = self.args
        results: dict[str, Any] = {"steps": []}
        with running_stack(workers=1, api_processes=1) as stack:
            # The stack's own API process is the first; the others on their own ports, alike.
            ports = [int(stack.api_url.rsplit(":", 1)[1])]
            pids = [stack.pids["api"][0]]
            extra = []
            api_log = open(Path(tempfile.gettempdir()) / "badges-bench-connections-api.log", "ab")  # noqa: SIM115
            for _ in range(args.api_processes - 1):
                port = free_port()
                process = start_api(stack.env, port, api_log, processes=1, ws_max_size=stack.settings.ws_max_size)
                extra.append(process)
                ports.append(port)
                pids.append(process.pid)
            try:
                results["steps"] = await self.steps(stack, ports, pids, settle)
                if self.churned is not None:
                    results["churn"] = self.churned
                results["bare_temporal_signals"] = await self.bare(stack)
            finally:
                for process in extra:
                    stop(process)
                api_log.close()
        results["config"] = {
            "api_processes": args.api_processes,
            "client_processes": self.clients,
            "ws_share": args.ws_share,
            "members": args.members or max(args.steps),
            "probes": args.probes,
            "probe_rate_per_s": args.probe_rate,
            "memory": "API processes at N held minus the same processes idle, / N; KB = 1,000 bytes",
        }
        return results

    async def bare(self, stack: Any) -> dict[str, Any]:
        from bench.realtime import bare_signals

        return await bare_signals(stack, 200, 10.0)

    async def steps(self, stack: Any, ports: list[int], pids: list[int], settle: Any) -> list[dict[str, Any]]:
        import psycopg

        from badges.api.auth import issue_token

        args = self.args
        top = max(args.steps)
        members = args.members or top
        self.clients = args.clients or math.ceil(top / args.per_client)
        planned = plan_connections(
            top, members=members, api_processes=len(ports), clients=self.clients, ws_share=args.ws_share
        )
        tokens = {sub: issue_token(stack.settings, sub, ["user"]) for sub in {c.sub for c in planned}}
        context = multiprocessing.get_context("spawn")
        deliveries = context.Queue()
        pipes, processes = [], []
        for client in range(self.clients):
            mine = [c for c in planned if c.client == client]
            plan = ClientPlan(
                client,
                client_source(client),
                ports,
                [(c.sub, c.kind, c.api, tokens[c.sub]) for c in mine],
                concurrency=max(1, args.opening // self.clients),
                freeze=args.client_freeze,
            )
            ours, theirs = context.Pipe()
            process = context.Process(target=client_process, args=(plan, theirs, deliveries), daemon=True)
            process.start()
            theirs.close()  # the client's end: with it closed here, a dead client is EOF, not a hang
            pipes.append(ours)
            processes.append(process)
        # Opened before the load: under it, the API processes' pools take every connection the
        # database allows.
        self.database = await psycopg.AsyncConnection.connect(stack.settings.libpq_url, autocommit=True)
        reader = asyncio.get_running_loop().run_in_executor(None, self._drain, deliveries)
        metrics = [f"http://{HOST}:{port}/metrics" for port in ports]
        try:
            # Idle: every process has served one stream of each kind (the code paths loaded).
            await self.warm_up(stack, ports)
            await asyncio.sleep(2)
            idle = [process_memory(pid) for pid in pids]
            pauses_idle = [parse_gc_pauses(text) for text in await scrape(metrics)]
            sockets_idle = parse_sockstat(Path("/proc/net/sockstat").read_text())
            outcomes = []
            for step in sorted(args.steps):
                began = time.perf_counter()
                statuses = await self.command(pipes, "open", [math.ceil(n) for n in self.share(step, planned)])
                opened_s = time.perf_counter() - began
                # The workflows the connections started finish their first tasks: the figures
                # below are of connections held, not of members arriving.
                settled_s = await settle(stack, limit=args.settle_limit)
                await asyncio.sleep(2)
                held_memory = [process_memory(pid) for pid in pids]
                sockets = parse_sockstat(Path("/proc/net/sockstat").read_text())
                connected = [c for c in planned[:step]]
                delivery = await self.probe(stack, ports, connected, tokens)
                statuses = await self.command(pipes, "status", [None] * len(pipes))
                texts = await scrape(metrics)
                pauses = [parse_gc_pauses(text) for text in texts]
                held = sum(s["held"] for s in statuses)
                outcome = {
                    "connections": step,
                    "held": held,
                    "failed": sum(s["failed"] for s in statuses),
                    "dropped": sum(s["dropped"] for s in statuses),
                    "errors": [s["errors"] for s in statuses if s["errors"]],
                    "sse": sum(1 for c in connected if c.kind == "sse"),
                    "ws": sum(1 for c in connected if c.kind == "ws"),
                    "open_s": round(opened_s, 1),
                    "settle_s": settled_s,
                    "kb_per_connection": per_connection_kb(idle, held_memory, held),
                    "api_memory_mb": {
                        "idle_pss": round(sum(m.pss for m in idle) / 1e6, 1),
                        "held_pss": round(sum(m.pss for m in held_memory) / 1e6, 1),
                        "held_rss_per_process": [round(m.rss / 1e6, 1) for m in held_memory],
                    },
                    # The kernel's TCP buffers, both ends of every loopback connection (client and
                    # server), not in any process's memory: per connection, pages of 4 KB.
                    "kernel_tcp_kb_per_connection": round(
                        (sockets["mem_pages"] - sockets_idle["mem_pages"]) * 4.096 / max(held, 1), 1
                    ),
                    "gc_pauses": [pauses_between(b, a) for b, a in zip(pauses_idle, pauses, strict=True)],
                    "gc_pauses_over_100ms": sum(
                        over_target(a) - over_target(b) for b, a in zip(pauses_idle, pauses, strict=True)
                    ),
                    "gc_longest_ms": round(max((g.longest for p in pauses for g in p.values()), default=0) * 1000, 1),
                    "gc_longest_cpu_ms": round(
                        max((g.longest_cpu for p in pauses for g in p.values()), default=0) * 1000, 1
                    ),
                    # The client processes' own collections: a pause there delays the deliveries
                    # they time.
                    "client_gc_full_collections": sum(s["gc_full_collections"] for s in statuses),
                    "client_gc_longest_ms": max(s["gc_longest_ms"] for s in statuses),
                    "client_gc_longest_cpu_ms": max(s["gc_longest_cpu_ms"] for s in statuses),
                    "api_heap_objects": [parse_heap_objects(text) for text in texts],
                    **delivery,
                    "load_average": [round(v, 2) for v in os.getloadavg()],
                }
                outcomes.append(outcome)
                print(json.dumps(outcome), file=sys.stderr, flush=True)
            if args.churn_seconds > 0:
                self.churned = await self.churn(pipes, pids, metrics)
                print(json.dumps({"churn": self.churned}), file=sys.stderr, flush=True)
            return outcomes
        except BaseException:
            traceback.print_exc()  # now: tearing down the clients and the stack can take a while
            raise
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.command(pipes, "close", [None] * len(pipes)), 60)
            await self.database.close()
            deliveries.put(None)
            await reader
            for process in processes:
                process.join(10)
                if process.is_alive():
                    process.kill()

    async def churn(self, pipes: list[Connection], pids: list[int], metrics: list[str]) -> dict[str, Any]:
        """At the last step's count held: connections closed and opened again for a while. What
        the API processes froze and their memory, before and after at the same count held, show
        what a connection that came and went left behind (frozen objects are never walked again,
        so a reference cycle among them that dies is never freed)."""
        args = self.args

        async def reading() -> dict[str, Any]:
            await asyncio.sleep(5)  # what the last connections were doing settles
            texts = await scrape(metrics)
            return {
                "objects": [parse_heap_objects(text) for text in texts],
                "rss_mb": [round(process_memory(pid).rss / 1e6, 1) for pid in pids],
                "pss_mb": [round(process_memory(pid).pss / 1e6, 1) for pid in pids],
                "pauses": [parse_gc_pauses(text) for text in texts],
            }

        before = await reading()
        began = time.perf_counter()
        statuses = await self.command(pipes, "churn", [(args.churn_rate / len(pipes), args.churn_seconds)] * len(pipes))
        churned_s = round(time.perf_counter() - began, 1)
        after = await reading()
        reconnected = sum(s["reconnected"] for s in statuses)
        return {
            "seconds": churned_s,
            "reconnected": reconnected,
            "held": sum(s["held"] for s in statuses),
            "failed": sum(s["failed"] for s in statuses),
            "dropped": sum(s["dropped"] for s in statuses),
            "objects_before": before["objects"],
            "objects_after": after["objects"],
            # Tracked objects (frozen or not) per reconnection that stayed: at the same count held,
            # what each connection that came and went left behind.
            "objects_left_per_reconnect": round(
                (sum(sum(o.values()) for o in after["objects"]) - sum(sum(o.values()) for o in before["objects"]))
                / max(reconnected, 1),
                2,
            ),
            "rss_mb_before": before["rss_mb"],
            "rss_mb_after": after["rss_mb"],
            "pss_mb_before": before["pss_mb"],
            "pss_mb_after": after["pss_mb"],
            "gc_pauses": [pauses_between(b, a) for b, a in zip(before["pauses"], after["pauses"], strict=True)],
            "client_gc": [
                {k: s[k] for k in ("gc_full_collections", "gc_longest_ms", "gc_longest_cpu_ms")} for s in statuses
            ],
        }

    def share(self, step: int, planned: list[Planned]) -> list[int]:
        """How many of its own connections each client holds once `step` are held in all."""
        counts = [0] * self.clients
        for connection in planned[:step]:
            counts[connection.client] += 1
        return counts

    async def command(self, pipes: list[Connection], command: str, arguments: list[Any]) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        for pipe, argument in zip(pipes, arguments, strict=True):
            pipe.send((command, argument))
        return list(await asyncio.gather(*(loop.run_in_executor(None, pipe.recv) for pipe in pipes)))

    def _drain(self, deliveries: Any) -> None:
        while True:
            item = deliveries.get()
            if item is None:
                return
            self.deliveries.add(*item)

    async def warm_up(self, stack: Any, ports: list[int]) -> None:
        """One stream of each kind per process, opened and closed: the idle figures then include
        what the first stream loads (modules, the Temporal client's connection)."""
        import aiohttp

        from badges.api.auth import issue_token

        headers = {"Authorization": f"Bearer {issue_token(stack.settings, 'warm-up', ['user'])}"}
        async with aiohttp.ClientSession() as http:
            for port in ports:
                for _ in range(3):
                    async with http.get(f"http://{HOST}:{port}/v1/me/stream", headers=headers) as response:
                        response.raise_for_status()
                    async with http.ws_connect(f"http://{HOST}:{port}/v1/me/ws", headers=headers) as websocket:
                        await websocket.close()

    async def probe(
        self, stack: Any, ports: list[int], connected: list[Planned], tokens: dict[str, str]
    ) -> dict[str, Any]:
        """Targeted updates to random connected members, at `--probe-rate` per second: events
        (after one warm-up event per probed member), then outbox rows."""
        import aiohttp

        from tests.support import real_time_event

        args = self.args
        rng = random.Random(len(connected))
        by_sub = {c.sub: c for c in connected}
        probed = rng.sample(sorted(by_sub), min(args.probes, len(by_sub)))
        counts: dict[str, int] = {}
        latencies: list[float] = []
        missing = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:

            async def post(sub: str) -> tuple[str, int, float] | None:
                counts[sub] = counts.get(sub, 0) + 1
                body = real_time_event(uuid.uuid4().hex, sub)
                sent = time.time()
                port = ports[by_sub[sub].api]
                headers = {"Authorization": f"Bearer {tokens[sub]}"}
                try:
                    async with http.post(f"http://{HOST}:{port}/v1/events", json=body, headers=headers) as response:
                        await response.read()
                        if response.status != 202:
                            return None
                except (aiohttp.ClientError, TimeoutError):
                    return None  # counted as missing
                return sub, counts[sub], sent

            async def paced(subs: list[str]) -> list[tuple[str, int, float] | None]:
                tasks = []
                began = time.perf_counter()
                for n, sub in enumerate(subs):
                    delay = began + n / args.probe_rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(post(sub)))
                return list(await asyncio.gather(*tasks))

            # Warm-up: each probed member's first event (its workflow's cache entry, its key).
            await self.await_arrivals(await paced(probed), "progress", 30)
            # Rounds of distinct members, so each update answers exactly one event.
            sent = []
            while len(sent) < args.probe_count:
                sent += await paced(rng.sample(probed, min(len(probed), args.probe_count - len(sent))))
            arrivals = await self.await_arrivals(sent, "progress", 30)
            for item, at in zip(sent, arrivals, strict=True):
                if item is None or at is None:
                    missing += 1
                else:
                    latencies.append((at - item[2]) * 1000)
            fanout = await self.probe_outbox(stack, rng.sample(sorted(by_sub), min(args.probe_count, len(by_sub))))
        return {
            "event_to_update_ms": {
                "probes": len(latencies),
                "missing": missing,
                **latency_percentiles(latencies),
            },
            "outbox_to_update_ms": fanout,
        }

    async def await_arrivals(
        self, sent: list[tuple[str, int, float] | None], kind: str, limit: float
    ) -> list[float | None]:
        deadline = time.perf_counter() + limit
        while True:
            arrivals = [
                None
                if item is None
                else self.deliveries.first(item[0], kind, lambda data, n=item[1]: data.get("value", 0) >= n)
                for item in sent
            ]
            if all(at is not None for at, item in zip(arrivals, sent, strict=True) if item is not None):
                return arrivals
            if time.perf_counter() > deadline:
                return arrivals
            await asyncio.sleep(0.1)

    async def probe_outbox(self, stack: Any, subs: list[str]) -> dict[str, Any]:
        """Insight rows appended straight to the outbox, one per random member, at the probe rate:
        commit → arrival is the tail and the fan-out alone."""
        from badges.db.outbox import append_insight

        pepper = stack.settings.identity_pepper.encode()
        digests = {hmac.new(pepper, sub.encode(), hashlib.sha256).digest(): sub for sub in subs}
        connection = self.database
        rows = await (
            await connection.execute(
                "SELECT subject_digest, id FROM members WHERE subject_digest = ANY(%s)", (list(digests),)
            )
        ).fetchall()
        ids = {digests[bytes(digest)]: member_id for digest, member_id in rows}
        sent: list[tuple[str, str, float]] = []
        began = time.perf_counter()
        for n, sub in enumerate(subs):
            delay = began + n / self.args.probe_rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            marker = uuid.uuid4().hex
            async with connection.transaction():
                await append_insight(connection, ids[sub], {"probe": marker})
            sent.append((sub, marker, time.time()))
        latencies: list[float] = []
        deadline = time.perf_counter() + 30
        pending = list(sent)
        while pending and time.perf_counter() < deadline:
            still = []
            for sub, marker, at in pending:
                arrived = self.deliveries.first(sub, "insight", lambda data, m=marker: data.get("probe") == m)
                if arrived is None:
                    still.append((sub, marker, at))
                else:
                    latencies.append((arrived - at) * 1000)
            pending = still
            if pending:
                await asyncio.sleep(0.1)
        return {
            "probes": len(latencies),
            "missing": len(pending),
            **latency_percentiles(latencies),
        }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[10_000], help="connections held at each step")
    parser.add_argument("--api-processes", type=int, default=4)
    parser.add_argument("--ws-share", type=float, default=0.4, help="share of connections on the WebSocket")
    parser.add_argument("--members", type=int, default=0, help="distinct members (0: one per connection)")
    parser.add_argument("--per-client", type=int, default=12_500, help="sockets per client process at most")
    parser.add_argument("--clients", type=int, default=0, help="client processes (0: from --per-client)")
    parser.add_argument("--probes", type=int, default=200, help="random connected members sent events")
    parser.add_argument("--probe-count", type=int, default=300, help="measured updates of each kind")
    parser.add_argument("--probe-rate", type=float, default=20.0, help="targeted updates per second")
    parser.add_argument("--settle-limit", type=float, default=600.0)
    parser.add_argument(
        "--churn-seconds",
        type=float,
        default=0.0,
        help="after the last step, close and reopen random connections for this long (what they leave behind)",
    )
    parser.add_argument(
        "--client-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the client processes freeze what their connections hold, as the API processes do",
    )
    parser.add_argument("--churn-rate", type=float, default=20.0, help="reconnections per second over all clients")
    parser.add_argument(
        "--opening",
        type=int,
        default=100,
        help="connections being opened at once over all clients (each authenticates its member and starts "
        "their workflow: the API processes' database pools bound how many can)",
    )
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.api_processes * 19_000 < max(args.steps):
        sys.exit("each API process may hold at most ~19,000 connections (20,000 open files): add processes")
    print(json.dumps(asyncio.run(Run(args).main()), indent=2))


if __name__ == "__main__":
    main()
