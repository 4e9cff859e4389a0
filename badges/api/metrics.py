"""The API's Prometheus metrics (`GET /metrics`): requests, events accepted, stream connections,
the outbox tail's lag, rewards, budgets and the review queue.

On the hot path only counters move (`prometheus_client` objects); what needs the database
(rewards, budgets, reviews, the outbox's newest row) is read when a scrape comes, at most once
every `READINGS_SECONDS` per process, so a storm of scrapes cannot load PostgreSQL; the rewards
ledger, which grows without end, is counted whole every `LEDGER_RECOUNT_SECONDS` and in between
only for the rows added since (`LedgerTally`).

Several processes on one port (`python -m badges.cli.api --workers N`): a scrape reaches one of
them, so per-process counters would jump between processes' values and every `rate()` would see
resets. We use prometheus-client's multiprocess mode instead: `badges.cli.api` gives the
processes a fresh `PROMETHEUS_MULTIPROC_DIR` when it starts more than one (or wipes the one an
operator set), each process's counters, histograms and gauges live in files there, and whichever
process answers aggregates them all (`MultiProcessCollector`). So the counters and histograms are
the service's totals from any process; the gauges that describe one process
(`badges_stream_connections`, `badges_outbox_tail_id`, `badges_outbox_lag_*`) carry a `pid`
label, one series per live process (a dead process's series are dropped when a scrape finds it
gone); what is read from the database is the same from every process and has no `pid`. The one
families that cannot be shared, the data-key cache (`badges_key_cache_*`) and the garbage
collector's pauses (`badges_gc_pause_*`), are the answering process's own, labelled with its
`pid`. With one process (no `PROMETHEUS_MULTIPROC_DIR`) nothing carries `pid`.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from badges.db.outbox import TailLag, outbox_lag
from badges.db.reviews import pending_reviews
from badges.db.rewards import BudgetState, budget_period, budget_state, count_ledger
from badges.heap import gc_pauses
from badges.metrics import GcPauseCollector, HasKeyCache, KeyCacheCollector

log = logging.getLogger("badges.metrics")

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
READINGS_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 3.0
# How often `badges_rewards` counts the whole ledger; in between, only the rows added since.
LEDGER_RECOUNT_SECONDS = 300.0
# Request latency: from the request's arrival to its response's first byte (for a stream, its
# opening), in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Channel = Literal["rest", "websocket", "webhook"]
CHANNELS: tuple[Channel, ...] = ("rest", "websocket", "webhook")
Transport = Literal["sse", "websocket"]
TRANSPORTS: tuple[Transport, ...] = ("sse", "websocket")
UNMATCHED = "unmatched"


def multiprocess_dir() -> str | None:
    """The shared folder of multiprocess mode, when this process is one of several."""
    return os.environ.get(MULTIPROCESS_DIR) or None


class ApiMetrics:
    """This process's counters and gauges (one set per app: tests run several in one process)."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        # In multiprocess mode the values live in the shared files and `MultiProcessCollector`
        # exposes them; registered here as well, they would be exposed twice.
        self.own = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "badges_http_request_duration_seconds",
            "HTTP requests by method, route template and status class (2xx...), and the seconds to their"
            " response's first byte; `_count` is the request count.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.own,
        )
        accepted = Counter(
            "badges_events_accepted",
            "Member events accepted (not duplicates) and handed to Temporal, by channel: rest (POST /v1/events),"
            " websocket, webhook (a signed integration).",
            ["channel"],
            registry=self.own,
        )
        duplicates = Counter(
            "badges_events_duplicate",
            "Events answered as duplicates of one already accepted.",
            ["channel"],
            registry=self.own,
        )
        self.accepted = {channel: accepted.labels(channel) for channel in CHANNELS}
        self.duplicates = {channel: duplicates.labels(channel) for channel in CHANNELS}
        connections = Gauge(
            "badges_stream_connections",
            "Open member streams in this process, by transport (sse, websocket).",
            ["transport"],
            registry=self.own,
            multiprocess_mode="liveall",
        )
        self.connections = {transport: connections.labels(transport) for transport in TRANSPORTS}
        self.outbox_tail = Gauge(
            "badges_outbox_tail_id",
            "The last outbox row this process's tail has read.",
            registry=self.own,
            multiprocess_mode="liveall",
        )


def route_template(scope: Scope) -> str:
    """The matched route's template (`/v1/me/badges/{badge_id}`), never the raw path: no member
    id or other value becomes a label."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestMetrics:
    """Counts and times every HTTP request (WebSockets are counted as connections instead)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self._app = app
        self._requests = metrics.requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = False

        async def timed_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                self._observe(scope, message["status"], started)
            await send(message)

        try:
            await self._app(scope, receive, timed_send)
        except BaseException:
            if not answered:  # the server answers 500
                self._observe(scope, 500, started)
            raise

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        self._requests.labels(scope["method"], route_template(scope), f"{status // 100}xx").observe(
            time.perf_counter() - started
        )


@contextlib.contextmanager
def connected(metrics: ApiMetrics, transport: Transport) -> Iterator[None]:
    """Counts one open stream for as long as the block runs."""
    gauge = metrics.connections[transport]
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


@dataclass(frozen=True)
class Readings:
    """What a scrape reads from the database (and each process's tail), as of one moment."""

    rewards: dict[str, int]
    budgets: list[BudgetState]
    reviews_pending: int
    outbox_newest: int
    lags: dict[str, TailLag]  # by process id ('' with one process)


TAIL_FILE = re.compile(r"gauge_liveall_(\d+)\.db$")


def live_tails(path: str) -> dict[str, int]:
    """Each live process's outbox tail, from the multiprocess files; a process that is gone has its
    gauges' files removed (`mark_process_dead`), as uvicorn replaces a worker without telling us."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        found = TAIL_FILE.search(name)
        if found and not process_alive(int(found.group(1))):
            mark_process_dead(int(found.group(1)), path)
    tails: dict[str, int] = {}
    for metric in MultiProcessCollector(None, path).collect():  # type: ignore[no-untyped-call]
        if metric.name == "badges_outbox_tail_id":
            for sample in metric.samples:
                tails[sample.labels["pid"]] = int(sample.value)
    return tails


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LedgerTally:
    """`badges_rewards` without counting the whole ledger every `READINGS_SECONDS`: a full count
    every `recount_every` seconds, and in between the rows added since (a range of the primary
    key) on top of it. What the rows added do not show (a deferred reward granted later, rows
    erased with their member, a row committed after one with a higher id) waits for the next
    full count."""

    def __init__(self, engine: AsyncEngine, *, recount_every: float = LEDGER_RECOUNT_SECONDS) -> None:
        self._engine = engine
        self._recount_every = recount_every
        self._counted_at: float | None = None
        self._by_status: dict[str, int] = {}
        self._through_id = 0

    async def read(self) -> dict[str, int]:
        now = time.monotonic()
        if self._counted_at is None or now - self._counted_at >= self._recount_every:
            counted = await count_ledger(self._engine)
            self._by_status, self._through_id, self._counted_at = dict(counted.by_status), counted.through_id, now
        else:
            added = await count_ledger(self._engine, after_id=self._through_id)
            for status, count in added.by_status.items():
                self._by_status[status] = self._by_status.get(status, 0) + count
            self._through_id = max(self._through_id, added.through_id)
        return dict(self._by_status)


class ScrapeReadings(Collector):
    """The figures that need the database, refreshed by `refresh()` (awaited by `GET /metrics`
    before it renders) at most every `READINGS_SECONDS`, concurrent scrapes sharing one read."""

    def __init__(
        self,
        engine: AsyncEngine,
        pool: AsyncConnectionPool,
        tails: Callable[[], dict[str, int]],
        *,
        max_age: float = READINGS_SECONDS,
    ) -> None:
        self._engine = engine
        self._pool = pool
        self._tails = tails
        self._max_age = max_age
        self._lock = asyncio.Lock()
        self._read_at = -max_age
        self._ledger = LedgerTally(engine)
        self.readings: Readings | None = None

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._read_at < self._max_age:
                return
            try:
                # Within a scrape's timeout: a slow database leaves the last readings in place.
                async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                    tails = self._tails()
                    newest, lags = await outbox_lag(self._pool, sorted(set(tails.values())))
                    by_tail = {lag.tail_id: lag for lag in lags}
                    self.readings = Readings(
                        rewards=await self._ledger.read(),
                        budgets=await budget_state(self._engine, budget_period(datetime.now(UTC))),
                        reviews_pending=await pending_reviews(self._engine),
                        outbox_newest=newest,
                        lags={pid: by_tail[tail] for pid, tail in tails.items()},
                    )
            except Exception:
                # The scrape still answers (with the last readings); the next one tries again.
                log.warning("metrics could not read the database", exc_info=True)
            self._read_at = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        readings = self.readings
        if readings is None:
            return
        rewards = GaugeMetricFamily(
            "badges_rewards", "Rewards in the ledger by status (granted, deferred, withheld).", labels=["status"]
        )
        for status in ("granted", "deferred", "withheld"):
            rewards.add_metric([status], readings.rewards.get(status, 0))
        yield rewards
        budget_labels = ["scope", "kind", "currency"]
        limit = GaugeMetricFamily(
            "badges_reward_budget_limit",
            "Each reward budget's monthly limit (scope: a badge, or * for all).",
            labels=budget_labels,
        )
        used = GaugeMetricFamily(
            "badges_reward_budget_used", "What this month has used of each budget.", labels=budget_labels
        )
        remaining = GaugeMetricFamily(
            "badges_reward_budget_remaining", "What is left of each budget this month.", labels=budget_labels
        )
        for budget in readings.budgets:
            labels = [budget.scope, budget.kind, budget.currency]
            limit.add_metric(labels, budget.monthly_limit)
            used.add_metric(labels, budget.used)
            remaining.add_metric(labels, max(0, budget.monthly_limit - budget.used))
        yield from (limit, used, remaining)
        yield GaugeMetricFamily(
            "badges_review_queue_pending", "Review items waiting for a reviewer.", value=readings.reviews_pending
        )
        yield GaugeMetricFamily("badges_outbox_newest_id", "The newest outbox row's id.", value=readings.outbox_newest)
        process_labels = ["pid"] if any(readings.lags) else []
        rows = GaugeMetricFamily(
            "badges_outbox_lag_rows",
            "Outbox rows written that this process's tail has not read.",
            labels=process_labels,
        )
        seconds = GaugeMetricFamily(
            "badges_outbox_lag_seconds",
            "Age of the oldest outbox row this process's tail has not read (0: it has read them all).",
            labels=process_labels,
        )
        for pid, lag in sorted(readings.lags.items()):
            rows.add_metric([pid] if process_labels else [], lag.rows)
            seconds.add_metric([pid] if process_labels else [], lag.seconds)
        yield from (rows, seconds)


def api_registry(metrics: ApiMetrics, keys: HasKeyCache, readings: ScrapeReadings) -> CollectorRegistry:
    """What `GET /metrics` renders: this process's metrics, or with several processes every
    process's (`MultiProcessCollector`), and the database readings."""
    path = multiprocess_dir()
    if metrics.own is None and path is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
        registry.register(KeyCacheCollector(keys, pid=os.getpid()))
        registry.register(GcPauseCollector(gc_pauses(), pid=os.getpid()))
    else:
        assert metrics.own is not None
        registry = metrics.own
        registry.register(KeyCacheCollector(keys))
        registry.register(GcPauseCollector(gc_pauses()))
    registry.register(readings)
    return registry


def tails_of(metrics: ApiMetrics, own_tail: Callable[[], int]) -> Callable[[], dict[str, int]]:
    """Where the lag readings find the processes' tails: every live process's from the shared
    files, or this process's own."""
    path = multiprocess_dir()
    if metrics.multiprocess and path is not None:
        return lambda: live_tails(path)
    return lambda: {"": own_tail()}


def forget_process(metrics: ApiMetrics) -> None:
    """At shutdown: this process's per-process gauges leave the shared files with it."""
    path = multiprocess_dir()
    if metrics.multiprocess and path is not None:
        mark_process_dead(os.getpid(), path)
