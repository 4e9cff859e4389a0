"""Each garbage collection's pause is recorded by generation and exported for Prometheus."""

from __future__ import annotations

import gc
import weakref

import pytest
from prometheus_client.parser import text_string_to_metric_families

import badges.heap
from badges.heap import PAUSE_BUCKETS, GcPauses
from tests.gc_clock import exported_samples, exposition, scripted_collection


def test_every_collection_is_timed_by_generation() -> None:
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
    finally:
        gc.callbacks.remove(pauses)
    found = pauses.pauses()
    assert found[2].count == 2 and found[0].count >= 1
    assert 0 < found[2].longest <= found[2].seconds
    assert found[2].buckets[-1] <= found[2].count
    assert list(found[2].buckets) == sorted(found[2].buckets)  # cumulative


def test_pauses_fall_in_the_right_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses = GcPauses()
    for wall in ((0.0, 0.0005), (1.0, 1.02), (2.0, 2.2), (3.0, 6.0)):
        scripted_collection(pauses, monkeypatch, wall=wall)
    found = pauses.pauses()[2]
    assert found.count == 4 and abs(found.longest - 3.0) < 1e-9
    by_bound = dict(zip(PAUSE_BUCKETS, found.buckets, strict=True))
    assert by_bound[0.001] == 1 and by_bound[0.025] == 2 and by_bound[0.1] == 2 and by_bound[0.25] == 3
    assert by_bound[2.5] == 3  # the 3 s pause is only in +Inf


def test_a_pause_spent_waiting_for_a_core_is_told_from_the_collectors_own_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses = GcPauses()
    # 2 s on the wall clock, of which the collection used 0.05 s of CPU (a busy machine).
    scripted_collection(pauses, monkeypatch, wall=(10.0, 12.0), cpu=(1.0, 1.05))
    found = pauses.pauses()[2]
    assert abs(found.longest - 2.0) < 1e-9 and abs(found.longest_cpu - 0.05) < 1e-9
    exported = exported_samples(pauses)
    assert abs(exported[("badges_gc_pause_max_cpu_seconds", "2")] - 0.05) < 1e-9


def test_the_collector_exports_a_histogram_and_the_longest_pause() -> None:
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        cycles = [[] for _ in range(10)]
        for cycle in cycles:
            cycle.append(cycle)
        del cycles, cycle
        gc.collect(2)
    finally:
        gc.callbacks.remove(pauses)
    families = {family.name: family for family in text_string_to_metric_families(exposition(pauses))}
    counts = {
        sample.labels["generation"]: sample.value
        for sample in families["badges_gc_pause_seconds"].samples
        if sample.name == "badges_gc_pause_seconds_count"
    }
    assert counts["2"] == 1
    longest = {sample.labels["generation"]: sample.value for sample in families["badges_gc_pause_max_seconds"].samples}
    assert longest["2"] > 0
    # The ten lists that held only themselves were freed by that collection.
    freed = {sample.labels["generation"]: sample.value for sample in families["badges_gc_collected_objects"].samples}
    assert freed["2"] >= 10


def test_a_pause_s_cpu_time_is_kept_beside_its_wall_clock_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A collection that waited for a core (wall 0.3 s, CPU 0.05 s) is told apart from a long one."""
    pauses = GcPauses()
    for wall, cpu in (((0.0, 0.3), (1.0, 1.05)), ((1.0, 1.02), (2.0, 2.02))):
        scripted_collection(pauses, monkeypatch, wall=wall, cpu=cpu)
    found = pauses.pauses()[2]
    assert abs(found.longest - 0.3) < 1e-9 and abs(found.longest_cpu - 0.05) < 1e-9
    assert abs(found.cpu_seconds - 0.07) < 1e-9
    samples = exported_samples(pauses)
    assert abs(samples[("badges_gc_pause_cpu_seconds_total", "2")] - 0.07) < 1e-9
    assert abs(samples[("badges_gc_pause_max_cpu_seconds", "2")] - 0.05) < 1e-9


def test_survivors_are_frozen_out_of_the_collectors_walks_and_still_freed_when_dropped() -> None:
    class Stream:  # stands for what an open stream holds
        pass

    before = gc.get_freeze_count()
    held = [Stream() for _ in range(1_000)]
    try:
        frozen = badges.heap.freeze_survivors()
        assert frozen >= before + 1_000
        assert not any(isinstance(o, Stream) for o in gc.get_objects())  # no collection walks them
        held.clear()  # the streams close: reference counts free them, frozen or not
        assert gc.get_freeze_count() <= frozen - 1_000
    finally:
        gc.unfreeze()


def test_a_dead_cycle_in_the_old_generation_is_freed_before_survivors_are_frozen() -> None:
    """Frozen objects are never walked again: a cycle frozen after it died would stay for good
    (a generation-1 collection before freezing, as the 5 s freezer did, does not look at the old
    generation)."""

    class Node:
        me: Node | None = None

    node = Node()
    node.me = node
    alive = weakref.ref(node)
    gc.collect(1)  # it survives a young collection: now in the old generation
    del node  # a cycle only the cyclic collector can free
    try:
        badges.heap.freeze_survivors()
        assert alive() is None
    finally:
        gc.unfreeze()


def test_a_full_collections_survivors_are_out_of_the_next_ones_walk() -> None:
    class Stream:  # stands for what an open stream holds
        pass

    stop_freezing = badges.heap.freeze_after_full_collections()
    try:
        held = [Stream() for _ in range(1_000)]
        gc.collect(1)  # the young collections promote them
        assert any(isinstance(o, Stream) for o in gc.get_objects(generation=2))
        gc.collect()  # a full collection, as the collector starts one once enough was promoted
        assert gc.get_objects(generation=2) == []  # the next full collection walks only what is new
        assert not any(isinstance(o, Stream) for o in gc.get_objects())
        frozen = gc.get_freeze_count()
        held.clear()  # the streams close: reference counts free them, frozen or not
        assert gc.get_freeze_count() <= frozen - 1_000
        # Young objects are collected as before, cycles included.
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect(0) >= 1
    finally:
        stop_freezing()
        gc.unfreeze()
    gc.collect()
    assert gc.get_freeze_count() == 0  # uninstalled: a full collection freezes nothing any more


def test_the_frozen_count_is_exported() -> None:
    samples = exported_samples(GcPauses())
    assert samples[("badges_gc_frozen_objects", None)] == gc.get_freeze_count()
    assert samples[("badges_gc_unfrozen_objects", None)] > 0  # this test process freezes nothing
