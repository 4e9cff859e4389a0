"""The worker's garbage-collection pauses against the number of member workflows in its cache.

One stack whose worker may cache `--cache` workflow runs (default: the most members + 1,000).
Members are added checkpoint by checkpoint (`--members`, e.g. 1000 10000 50000), each posting a
first event, so that many `UserBadgesWorkflow` runs sit in the worker's cache; at each
checkpoint a warm load of `--rate` events/s for `--seconds` goes to the first `--listeners`
members filled, each on an SSE stream (the least recently used: with a cache smaller than the
members they are the ones evicted, so their events replay). Prints JSON: per checkpoint, the
fill's rate and CPU, the worker's RSS, its full (generation 2) collections during the fill and
during the load (count, mean pause in wall-clock and CPU time, the histogram's bound, objects
freed), its young collections during the load, the longest pause of each generation since it
started (start-up's own full collection, before it freezes its heap, included), and
event→update p50/p99 during the load, each member's first event of the load apart.

    .venv/bin/python -m bench.worker_gc --members 1000 10000 50000
    .venv/bin/python -m bench.worker_gc --members 2000 --cache 1000 --listeners 1000 --rate 20 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import psutil

from badges.api.auth import issue_token
from bench.realtime import MEMBER_SCRIPT, Measurements, Member, listen, post_event
from bench.stack import Stack, running_stack, settle
from bench.stats import GenerationPauses, parse_gc_pauses, percentile

# Generation 2 is a full collection: the one that walks every cached workflow.
FULL = "2"
# A first event that fails (a timeout on a busy machine) is sent again, at most this many times in all.
FILL_ATTEMPTS = 5


async def worker_pauses(stack: Stack) -> dict[str, GenerationPauses]:
    """The worker's pauses, by generation, from its Prometheus endpoint."""
    async with aiohttp.ClientSession() as http, http.get(stack.metrics_urls["workers"][0]) as response:
        return parse_gc_pauses(await response.text())


def pauses_between(before: GenerationPauses, after: GenerationPauses) -> dict[str, Any]:
    """One generation's collections between two scrapes: how many, their mean, the histogram's
    bound the longest stayed within (ms) and the histogram (pauses up to each bound, cumulative)."""
    count = after.count - before.count
    seconds = after.seconds - before.seconds
    cpu_seconds = after.cpu_seconds - before.cpu_seconds
    buckets = {le: n - before.buckets.get(le, 0) for le, n in after.buckets.items()}
    within = [le for le, n in buckets.items() if n == count]
    return {
        "count": count,
        "mean_ms": round(1000 * seconds / count, 1) if count else None,
        # The collecting thread's CPU: the pause on an idle machine (wall-clock adds waits for a core).
        "mean_cpu_ms": round(1000 * cpu_seconds / count, 1) if count else None,
        # Unreachable objects they freed (reference cycles, e.g. evicted workflow runs).
        "collected_objects": after.collected - before.collected,
        "longest_within_ms": round(1000 * min(within), 1) if count else None,
        "histogram_ms": {("inf" if math.isinf(le) else f"{1000 * le:g}"): n for le, n in buckets.items()},
    }


def worker_rss_mb(stack: Stack) -> float:
    return round(psutil.Process(stack.pids["workers"][0]).memory_info().rss / 2**20, 1)


async def fill(stack: Stack, client: aiohttp.ClientSession, members: list[Member], concurrency: int) -> float:
    """Every member's first event (their workflow started by it), `concurrency` at a time; returns
    members per second. Progress on stderr."""
    measured = Measurements()
    gate = asyncio.Semaphore(concurrency)
    done = 0
    began = time.perf_counter()
    type_, badge_id = MEMBER_SCRIPT[0]

    async def first_event(member: Member) -> None:
        nonlocal done
        async with gate:
            for _ in range(FILL_ATTEMPTS):
                failed = measured.failed
                await post_event(client, member, type_, badge_id, measured)
                if measured.failed == failed:
                    break
                member.counts[badge_id] -= 1  # not accepted: the retry is the member's first event
        done += 1
        if done % 1000 == 0 or done == len(members):
            rate = done / (time.perf_counter() - began)
            print(f"fill: {done}/{len(members)} members, {rate:.0f}/s", file=sys.stderr, flush=True)

    await asyncio.gather(*(first_event(member) for member in members))
    if measured.accepted < len(members):
        raise RuntimeError(
            f"{len(members) - measured.accepted} of {len(members)} first events failed {FILL_ATTEMPTS} times"
        )
    for member in members:
        member.sent.clear()  # their updates went to no stream: the load measures its own events
    return round(len(members) / (time.perf_counter() - began), 1)


async def load(
    client: aiohttp.ClientSession,
    listeners: list[Member],
    rate: float,
    seconds: float,
    script_at: int,
    first: Measurements,
    later: Measurements,
) -> None:
    """`rate` events/s for `seconds` over the listeners in turn; the first event each listener gets
    is measured in `first`, the others in `later`."""
    posts = []
    began = time.perf_counter()
    for i in range(int(rate * seconds)):
        member = listeners[i % len(listeners)]
        type_, badge_id = MEMBER_SCRIPT[script_at + i // len(listeners)]
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        measured = first if i < len(listeners) else later
        posts.append(asyncio.create_task(post_event(client, member, type_, badge_id, measured)))
    await asyncio.gather(
        *posts, return_exceptions=True
    )  # an overloaded stack: a post may time out after its update came
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and any(len(m.latencies_ms) < m.accepted for m in (first, later)):
        await asyncio.sleep(0.1)


def latency(measured: Measurements) -> dict[str, Any]:
    return {
        "events": measured.accepted,
        "failed": measured.failed,
        "missing": measured.accepted - len(measured.latencies_ms),
        "p50_ms": percentile(measured.latencies_ms, 50),
        "p99_ms": percentile(measured.latencies_ms, 99),
    }


async def run(stack: Stack, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Fill the worker's cache up to each of `args.members` in turn (one stack, members added),
    and measure a warm load at each."""
    checkpoints = sorted(args.members)
    listeners_count = min(checkpoints[0], args.listeners)
    events_per_listener = int(args.rate * args.seconds) / listeners_count
    if events_per_listener * len(checkpoints) > len(MEMBER_SCRIPT) - 1:
        raise SystemExit("more events than the listeners' badges allow: raise --listeners or lower --rate/--seconds")
    connector = aiohttp.TCPConnector(limit=args.concurrency + listeners_count + 100)
    timeout = aiohttp.ClientTimeout(total=120)
    outcomes = []
    async with aiohttp.ClientSession(stack.api_url, connector=connector, timeout=timeout) as client:
        members: list[Member] = []
        tasks: list[asyncio.Task[None]] = []
        first, later = Measurements(), Measurements()
        routed = _Routed(first, later)
        script_at = 1  # MEMBER_SCRIPT[0] is every member's first event
        for members_count in checkpoints:
            at_start = await worker_pauses(stack)
            added = []
            for _ in range(members_count - len(members)):
                sub = f"bench-{uuid.uuid4()}"
                added.append(Member(sub, {"Authorization": f"Bearer {issue_token(stack.settings, sub, ['user'])}"}))
            cpu_before = stack.cpu_seconds()
            fill_rate = await fill(stack, client, added, args.concurrency)
            fill_cpu = {name: round(used - cpu_before[name], 1) for name, used in stack.cpu_seconds().items()}
            members.extend(added)
            settled_s = await settle(stack, limit=300)
            after_fill = await worker_pauses(stack)
            rss_after_fill = worker_rss_mb(stack)
            if not tasks:
                # The first members filled, on streams from here on: the least recently used, so
                # the first evicted from a cache smaller than the members.
                for start in range(0, listeners_count, 100):
                    batch = members[start : min(start + 100, listeners_count)]
                    ready = [asyncio.Event() for _ in batch]
                    for member, event in zip(batch, ready, strict=True):
                        tasks.append(asyncio.create_task(listen(client, member, routed, event)))
                    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), 60)
            print(f"load: {args.rate:g}/s for {args.seconds:g} s, {members_count} members", file=sys.stderr, flush=True)
            first, later = Measurements(), Measurements()
            routed.measure_into(first, later)
            cpu_before = stack.cpu_seconds()
            before_load = await worker_pauses(stack)
            await load(client, members[:listeners_count], args.rate, args.seconds, script_at, first, later)
            script_at += math.ceil(events_per_listener)
            after_load = await worker_pauses(stack)
            cpu_used = {name: round(used - cpu_before[name], 1) for name, used in stack.cpu_seconds().items()}
            outcome = {
                "members": members_count,
                "max_cached_workflows": stack.settings.worker_max_cached_workflows,
                "gc_thresholds": stack.settings.worker_gc_thresholds,
                "fill_members_per_s": fill_rate,
                "fill_cpu_s": fill_cpu,
                "settle_s": settled_s,
                "worker_rss_mb": {"after_fill": rss_after_fill, "after_load": worker_rss_mb(stack)},
                "full_collections": {
                    "fill": pauses_between(at_start[FULL], after_fill[FULL]),
                    "load": pauses_between(before_load[FULL], after_load[FULL]),
                },
                "young_collections_load": {g: pauses_between(before_load[g], after_load[g]) for g in ("0", "1")},
                # Since the worker started: the largest heap so far is this one, so the longest
                # full collection is (nearly) one at this size.
                "longest_pause_ms_since_start": {g: round(1000 * p.longest, 1) for g, p in sorted(after_load.items())},
                "longest_pause_cpu_ms_since_start": {
                    g: round(1000 * p.longest_cpu, 1) for g, p in sorted(after_load.items())
                },
                "load": {
                    "offered_events_per_s": args.rate,
                    "seconds": args.seconds,
                    "listeners": listeners_count,
                    # Each listener's first event of the load: a replay of its history when it was evicted.
                    "first_event_per_member": latency(first),
                    "later_events": latency(later),
                    "cpu_s": cpu_used,
                },
            }
            print(json.dumps(outcome), file=sys.stderr, flush=True)
            outcomes.append(outcome)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return outcomes


class _Routed(Measurements):
    """The listeners' updates, each event's latency credited to the measurements it was posted
    with (`post_event` files every event it sends under its id in that one's `times`)."""

    def __init__(self, first: Measurements, later: Measurements) -> None:
        super().__init__()
        self.measure_into(first, later)

    def measure_into(self, first: Measurements, later: Measurements) -> None:
        self._first, self._later = first, later

    def progress(self, member: Member, data: dict[str, Any], now: float) -> None:
        pending = member.sent[data["badgeId"]]
        while pending and pending[0][0] <= data["value"]:
            _, sent_at, event_id = pending.pop(0)
            target = self._first if event_id in self._first.times else self._later
            target.latencies_ms.append((now - sent_at) * 1000)


@contextmanager
def worker_settings(**values: str) -> Iterator[None]:
    """Settings for the stack's worker, through the environment the stack passes on."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def main(args: argparse.Namespace) -> None:
    values = {"BADGES_WORKER_MAX_CACHED_WORKFLOWS": str(args.cache or max(args.members) + 1000)}
    if args.gc_thresholds:
        values["BADGES_WORKER_GC_THRESHOLDS"] = args.gc_thresholds
    print(f"worker: {values}", file=sys.stderr, flush=True)
    with worker_settings(**values), running_stack() as stack:
        runs = await run(stack, args)
    print(json.dumps({"python": sys.version.split()[0], "worker": values, "runs": runs}, indent=2))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--members", type=int, nargs="+", default=[1000, 10000, 50000], help="cached members at each measurement"
    )
    parser.add_argument(
        "--cache", type=int, default=0, help="the worker's max_cached_workflows (0: the most members + 1000)"
    )
    parser.add_argument(
        "--gc-thresholds", default="", help="the worker's gc thresholds gen0,gen1,gen2 (default: its own)"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="events/s of the warm load")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of the warm load")
    parser.add_argument("--listeners", type=int, default=1000, help="members the load goes to, each on an SSE stream")
    parser.add_argument("--concurrency", type=int, default=64, help="first events in flight while filling")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
