"""Prometheus metrics of one process (the API's `GET /metrics`, the worker's
`BADGES_WORKER_METRICS_PORT`): its data-key cache and, in a worker, its progress writes, the
member events they applied, and each bank provider's health, read when scraped, so the hot path
only counts. The API's own (requests, events, streams, outbox, rewards) are in `api/metrics.py`."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from badges.db.group_commit import GroupCommitStats
from badges.db.keys import KeyCacheStats
from badges.heap import PAUSE_BUCKETS, GcPauses, gc_pauses

CONTENT_TYPE = CONTENT_TYPE_LATEST


class HasKeyCache(Protocol):
    def cache_stats(self) -> KeyCacheStats: ...


class KeyCacheCollector(Collector):
    """`pid`: label the figures with this process's id (the API's several processes on one port,
    `api/metrics.py`: a scrape is answered by one of them, and these are that one's)."""

    def __init__(self, keys: HasKeyCache, *, pid: int | None = None) -> None:
        self._keys = keys
        self._labels = ([], []) if pid is None else (["pid"], [str(pid)])

    def collect(self) -> Iterator[Metric]:
        stats = self._keys.cache_stats()
        names, values = self._labels
        for family, name, documentation, value in (
            (CounterMetricFamily, "badges_key_cache_hits", "Data-key lookups answered from memory.", stats.hits),
            (CounterMetricFamily, "badges_key_cache_misses", "Data-key lookups that read the database.", stats.misses),
            (GaugeMetricFamily, "badges_key_cache_entries", "Data keys held in memory.", stats.entries),
            (
                GaugeMetricFamily,
                "badges_key_cache_max_entries",
                "The most data keys held in memory.",
                stats.max_entries,
            ),
            (
                GaugeMetricFamily,
                "badges_key_cache_max_age_seconds",
                "How long a data key is used before its row is read again.",
                stats.max_age_seconds,
            ),
        ):
            metric = family(name, documentation, labels=names)
            metric.add_metric(values, value)
            yield metric


class HasProgressWrites(Protocol):
    events_applied: int

    def stats(self) -> GroupCommitStats: ...


class ProgressWriteCollector(Collector):
    """The real-time path's write of each batch (`ProgressWriter`): its mean time is
    `badges_progress_write_seconds_sum / _count`, and batches per transaction show how much
    the writes queue."""

    def __init__(self, writer: HasProgressWrites) -> None:
        self._writer = writer

    def collect(self) -> Iterator[Metric]:
        stats = self._writer.stats()
        yield SummaryMetricFamily(
            "badges_progress_write_seconds",
            "Batches of progress written, and the seconds from reaching the writer to their commit.",
            count_value=stats.items,
            sum_value=stats.write_seconds,
        )
        yield CounterMetricFamily(
            "badges_progress_transactions", "Transactions that wrote batches of progress.", value=stats.transactions
        )
        yield CounterMetricFamily(
            "badges_events_applied",
            "Member events this worker decided and wrote (the real-time path's applied count; one that changed"
            " nothing is not counted).",
            value=self._writer.events_applied,
        )


class ProviderStatsLike(Protocol):
    ok: int
    failed: int
    paused: int
    seconds: float
    breaker_open: bool


class HasProviderHealth(Protocol):
    def stats(self) -> Mapping[str, ProviderStatsLike]: ...


class ProviderHealthCollector(Collector):
    """Each bank provider's health as this worker's syncs find it: syncs by outcome (`ok`,
    `failed`: an outage or rate limit, `paused`: its breaker was open; the success rate is
    ok / (ok + failed)), the seconds they took (latency: `_sum / _count`), and whether its breaker
    is open."""

    def __init__(self, health: HasProviderHealth) -> None:
        self._health = health

    def collect(self) -> Iterator[Metric]:
        syncs = CounterMetricFamily(
            "badges_provider_syncs", "Bank syncs by provider and outcome.", labels=["provider", "outcome"]
        )
        seconds = SummaryMetricFamily(
            "badges_provider_sync_seconds",
            "Bank syncs that called the provider, and their seconds.",
            labels=["provider"],
        )
        open_ = GaugeMetricFamily(
            "badges_provider_breaker_open", "1 while the provider's breaker is open.", labels=["provider"]
        )
        for provider, stats in sorted(self._health.stats().items()):
            for outcome, count in (("ok", stats.ok), ("failed", stats.failed), ("paused", stats.paused)):
                syncs.add_metric([provider, outcome], count)
            seconds.add_metric([provider], count_value=stats.ok + stats.failed, sum_value=stats.seconds)
            open_.add_metric([provider], 1.0 if stats.breaker_open else 0.0)
        yield from (syncs, seconds, open_)


# Each generation's figures besides the histogram: family, name, documentation, and the
# `GenerationPauses` field it reads.
GC_FIGURES = (
    (GaugeMetricFamily, "badges_gc_pause_max_seconds", "The longest garbage-collection pause so far.", "longest"),
    (
        CounterMetricFamily,
        "badges_gc_pause_cpu_seconds",
        "CPU time spent in garbage collections (their wall-clock time less any wait for a core).",
        "cpu_seconds",
    ),
    (
        GaugeMetricFamily,
        "badges_gc_pause_max_cpu_seconds",
        "The most CPU one garbage collection used so far: its pause on a machine with a core to spare.",
        "longest_cpu",
    ),
    (
        CounterMetricFamily,
        "badges_gc_collected_objects",
        "Objects garbage collections found unreachable and freed (reference cycles).",
        "collected",
    ),
)


class GcPauseCollector(Collector):
    """How long the garbage collector stopped this process, by generation (0, 1, 2: a full
    collection): a histogram (`le` in seconds) and the longest pause since the process started."""

    def __init__(self, pauses: GcPauses, *, pid: int | None = None) -> None:
        self._pauses = pauses
        # `pid`: as for the key cache, the answering process's own among several on one port.
        self._labels = ([], []) if pid is None else (["pid"], [str(pid)])

    def collect(self) -> Iterator[Metric]:
        names, values = self._labels
        labels = ["generation", *names]
        histogram = HistogramMetricFamily(
            "badges_gc_pause_seconds", "Garbage collections and how long each stopped the process.", labels=labels
        )
        figures = [
            (family(name, documentation, labels=labels), field) for family, name, documentation, field in GC_FIGURES
        ]
        for generation, pauses in self._pauses.pauses().items():
            buckets = [(repr(bound), count) for bound, count in zip(PAUSE_BUCKETS, pauses.buckets, strict=True)]
            generation_labels = [str(generation), *values]
            histogram.add_metric(generation_labels, [*buckets, ("+Inf", pauses.count)], sum_value=pauses.seconds)
            for metric, field in figures:
                metric.add_metric(generation_labels, getattr(pauses, field))
        frozen = GaugeMetricFamily(
            "badges_gc_frozen_objects",
            "Objects out of the collector's reach (start-up, and what survived while streams were held).",
        )
        frozen.add_metric([], gc.get_freeze_count())
        unfrozen = GaugeMetricFamily(
            "badges_gc_unfrozen_objects",
            "Objects the collector tracks and has not frozen: what a full collection would walk now.",
        )
        unfrozen.add_metric([], len(gc.get_objects()))
        yield histogram
        yield from (metric for metric, _ in figures)
        yield from (frozen, unfrozen)


def process_registry(
    keys: HasKeyCache, progress: HasProgressWrites | None = None, providers: HasProviderHealth | None = None
) -> CollectorRegistry:
    """This process's metrics, in a registry of its own (tests run several apps in one process)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(KeyCacheCollector(keys))
    registry.register(GcPauseCollector(gc_pauses()))
    if progress is not None:
        registry.register(ProgressWriteCollector(progress))
    if providers is not None:
        registry.register(ProviderHealthCollector(providers))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
