"""The garbage collector in long-running processes (the worker, each API process): what is kept
out of its walks, and how long each of its collections stops the process."""

from __future__ import annotations

import bisect
import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Upper bounds of the pause histogram, in seconds: the targets sit at 10 ms (a live event's budget
# has room for it) and 100 ms (the most any process may stop).
PAUSE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (modules, schemas, protobuf descriptors: ~150,000
    objects in the worker) out of the collector's reach, so a full collection only walks what the
    process made since. Measured under load (bench/RESULTS.md), full collections paused the
    worker for 85-320 ms before and 2-125 ms after, the API for 180-210 ms before and 19 ms
    after: at 100 events/s each such pause was where the run's slowest events were.

    Objects made after this are collected as usual; the frozen ones are never freed, which is
    what start-up objects are for anyway."""
    freeze_survivors()


def freeze_survivors() -> int:
    """A full collection of what is not frozen yet, then everything that survived it out of the
    collector's reach. Returns how many objects are frozen now (a walk of all of them: not for a
    hot path)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class FreezeAfterFullCollections:
    """A `gc.callbacks` entry: right after each full (generation-2) collection, whatever survived
    it is frozen, so the next full collection walks only what has survived young collections
    since. For an API process holding thousands of streams (~160 tracked objects each: ~2 million
    at 12,500 streams, a quarter of a second of CPU for one full walk on this machine).

    Why after a full collection, and not on a timer: the collector starts a full collection once
    the objects promoted since the last one exceed a quarter of what that one kept (and every
    11th generation-1 collection at most), so with each full collection's survivors frozen, the
    unfrozen old generation stays at about eleven generation-1 collections' survivors (~85,000
    objects with the default thresholds, ~15 ms of CPU here) however many streams are open, at
    any rate of connecting. A timer (every 5 s, before) let a ramp's survivors pile up between
    ticks, and froze whatever the old generation held at the tick, dead cycles included (a
    generation-1 collection does not look at it): those were never freed. Here everything frozen
    has just survived a full collection.

    What is frozen is still freed by its reference count when a stream closes; only a reference
    cycle among frozen objects that dies later stays. A connection's own objects form one
    (uvicorn's protocol, its transport and socket, flow control: about 5 objects for an SSE
    stream, 20 for a WebSocket; bench/RESULTS.md, "Reference cycles the API's periodic freeze
    keeps"), so every connection frozen while open leaves those few objects behind when it
    closes: `badges_gc_frozen_objects` grows with reconnections at a steady number of open
    streams. Not bounded yet (an occasional `gc.unfreeze()` would let the next full collection
    free them, at the price of one walk of everything)."""

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        # Inside a collection's callback the collector is not walking any list: moving the old
        # generation to the permanent one is a splice of two linked lists.
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()


def freeze_after_full_collections() -> Callable[[], None]:
    """Install `FreezeAfterFullCollections` for this process; returns what uninstalls it."""
    freezer = FreezeAfterFullCollections()
    gc.callbacks.append(freezer)

    def uninstall() -> None:
        if freezer in gc.callbacks:
            gc.callbacks.remove(freezer)

    return uninstall


@dataclass(frozen=True)
class GenerationPauses:
    count: int
    seconds: float
    longest: float
    buckets: tuple[int, ...]  # pauses at most each of PAUSE_BUCKETS' bounds, cumulative
    # The collecting thread's CPU time in them: on a busy machine a pause's wall-clock time also
    # holds the time the process waited for a core; its CPU time is the collection's own cost.
    cpu_seconds: float = 0.0
    longest_cpu: float = 0.0
    # Objects the collections found unreachable and freed (cycles: what reference counting
    # could not free, e.g. evicted workflow runs).
    collected: int = 0


class GcPauses:
    """Every collection's pause, by generation, timed by `gc.callbacks` (the interpreter calls
    them just before and after each collection, in the collecting thread, with the world
    stopped). Costs four clock reads a collection; `pauses` is read by the metrics collector."""

    def __init__(self) -> None:
        self._started = 0.0
        self._started_cpu = 0.0
        self._lock = threading.Lock()
        self._count = [0, 0, 0]
        self._seconds = [0.0, 0.0, 0.0]
        self._longest = [0.0, 0.0, 0.0]
        self._cpu_seconds = [0.0, 0.0, 0.0]
        self._longest_cpu = [0.0, 0.0, 0.0]
        self._collected = [0, 0, 0]
        self._buckets = [[0] * len(PAUSE_BUCKETS) for _ in range(3)]

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._started_cpu = time.thread_time()
            return
        pause = time.perf_counter() - self._started
        cpu = time.thread_time() - self._started_cpu
        generation = info["generation"]
        with self._lock:
            self._count[generation] += 1
            self._seconds[generation] += pause
            self._longest[generation] = max(self._longest[generation], pause)
            self._cpu_seconds[generation] += cpu
            self._longest_cpu[generation] = max(self._longest_cpu[generation], cpu)
            self._collected[generation] += info.get("collected", 0)
            first = bisect.bisect_left(PAUSE_BUCKETS, pause)
            if first < len(PAUSE_BUCKETS):
                self._buckets[generation][first] += 1

    def pauses(self) -> dict[int, GenerationPauses]:
        with self._lock:
            found = {}
            for generation in range(3):
                cumulative, total = [], 0
                for count in self._buckets[generation]:
                    total += count
                    cumulative.append(total)
                found[generation] = GenerationPauses(
                    self._count[generation],
                    self._seconds[generation],
                    self._longest[generation],
                    tuple(cumulative),
                    self._cpu_seconds[generation],
                    self._longest_cpu[generation],
                    self._collected[generation],
                )
            return found


_process_pauses: GcPauses | None = None


def gc_pauses() -> GcPauses:
    """This process's pause recorder, installed on first use (once, however many apps a test
    process builds)."""
    global _process_pauses
    if _process_pauses is None:
        _process_pauses = GcPauses()
        gc.callbacks.append(_process_pauses)
    return _process_pauses
