"""What every benchmark reads and reports the same way: percentiles of latencies, and a process's
garbage-collection pauses read back from its Prometheus exposition (`badges/metrics.py`). Light on
imports (not the app's), so client processes that a benchmark spawns can load it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


def percentile(values: Sequence[float], q: float, *, digits: int = 1) -> float | None:
    """The nearest-rank `q`th percentile (0 < q <= 100: 100 is the largest), rounded; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))], digits)


def latency_percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """The median, the 99th percentile and the largest, as every benchmark reports a latency."""
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "max": percentile(values, 100)}


@dataclass(frozen=True)
class GenerationPauses:
    """One generation's collections as scraped: counters and gauges since the process started."""

    count: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    longest: float = 0.0
    longest_cpu: float = 0.0
    collected: int = 0
    # The histogram: collections that stopped the process at most `le` seconds (inf: all of them).
    buckets: dict[float, int] = field(default_factory=dict)

    def over(self, seconds: float) -> int:
        """Collections that stopped the process longer than `seconds` (a bound of the histogram)."""
        return self.count - self.buckets.get(seconds, 0)


# The exposition's sample names, and the field each fills.
_FIELDS = {
    "badges_gc_pause_seconds_count": "count",
    "badges_gc_pause_seconds_sum": "seconds",
    "badges_gc_pause_cpu_seconds_total": "cpu_seconds",
    "badges_gc_pause_max_seconds": "longest",
    "badges_gc_pause_max_cpu_seconds": "longest_cpu",
    "badges_gc_collected_objects_total": "collected",
}


def parse_gc_pauses(exposition: str) -> dict[str, GenerationPauses]:
    """Each generation's ("0", "1", "2") pauses from one `/metrics` answer."""
    found: dict[str, dict[str, float]] = {}
    buckets: dict[str, dict[float, int]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            generation = sample.labels.get("generation")
            if generation is None:
                continue
            if sample.name == "badges_gc_pause_seconds_bucket":
                buckets.setdefault(generation, {})[float(sample.labels["le"])] = int(sample.value)
            elif sample.name in _FIELDS:
                found.setdefault(generation, {})[_FIELDS[sample.name]] = sample.value
    pauses = {}
    for generation in sorted(found.keys() | buckets.keys()):
        values = found.get(generation, {})
        pauses[generation] = GenerationPauses(
            count=int(values.get("count", 0)),
            seconds=values.get("seconds", 0.0),
            cpu_seconds=values.get("cpu_seconds", 0.0),
            longest=values.get("longest", 0.0),
            longest_cpu=values.get("longest_cpu", 0.0),
            collected=int(values.get("collected", 0)),
            buckets=buckets.get(generation, {}),
        )
    return pauses


def parse_heap_objects(exposition: str) -> dict[str, int]:
    """`badges_gc_frozen_objects` (what a process froze and has not freed: the start-up heap, and
    what its open connections hold) and `badges_gc_unfrozen_objects` (what a full collection
    would walk now), where the process exports them."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name in ("badges_gc_frozen_objects", "badges_gc_unfrozen_objects"):
                found[sample.name.removeprefix("badges_gc_")] = int(sample.value)
    return found
