"""bench.connections' accounting: the plan of connections, memory per connection, the kernel's
socket memory and the garbage-collection pauses read back from /metrics."""

from __future__ import annotations

from collections import Counter

import pytest

from badges.heap import GcPauses
from bench.connections import (
    Memory,
    client_source,
    over_target,
    parse_smaps_rollup,
    parse_sockstat,
    pauses_between,
    per_connection_kb,
    plan_connections,
)
from bench.stats import latency_percentiles, parse_gc_pauses, percentile
from tests.gc_clock import exposition, scripted_collection


def test_the_plan_spreads_kinds_processes_and_clients_evenly_in_every_step() -> None:
    planned = plan_connections(50_000, members=50_000, api_processes=4, clients=4, ws_share=0.4)
    for step in (10_000, 50_000):
        prefix = planned[:step]
        kinds = Counter(c.kind for c in prefix)
        assert kinds["ws"] == int(step * 0.4) and kinds["sse"] == step - int(step * 0.4)
        assert set(Counter(c.api for c in prefix).values()) == {step // 4}
        assert set(Counter(c.client for c in prefix).values()) == {step // 4}
        # Each process gets both kinds in the same proportion.
        for api in range(4):
            share = sum(1 for c in prefix if c.api == api and c.kind == "ws") / (step // 4)
            assert share == pytest.approx(0.4, abs=0.01)
    assert len({c.sub for c in planned}) == 50_000


def test_fewer_members_than_connections_share_them() -> None:
    planned = plan_connections(100, members=10, api_processes=3, clients=2, ws_share=0.0)
    assert Counter(c.sub for c in planned) == {f"conn-{n}": 10 for n in range(10)}
    assert {c.kind for c in planned} == {"sse"}
    assert {c.kind for c in plan_connections(10, members=10, api_processes=1, clients=1, ws_share=1.0)} == {"ws"}


def test_each_client_sends_from_its_own_loopback_address() -> None:
    assert [client_source(c) for c in range(3)] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    with pytest.raises(ValueError):
        client_source(250)


SMAPS_ROLLUP = """55d0c0a00000-7ffd6b9fe000 ---p 00000000 00:00 0                          [rollup]
Rss:              227000 kB
Pss:              180500 kB
Pss_Anon:         170000 kB
Shared_Clean:      40000 kB
Shared_Dirty:       1000 kB
Private_Clean:      6000 kB
Private_Dirty:    180000 kB
Referenced:       227000 kB
Anonymous:        170000 kB
Swap:                  0 kB
"""


def test_memory_is_read_from_smaps_rollup() -> None:
    assert parse_smaps_rollup(SMAPS_ROLLUP) == Memory(rss=227_000 * 1024, pss=180_500 * 1024, uss=186_000 * 1024)


def test_memory_per_connection_is_the_growth_of_every_process_over_the_connections() -> None:
    idle = [Memory(rss=100_000_000, pss=90_000_000, uss=80_000_000)] * 2
    held = [
        Memory(rss=300_000_000, pss=290_000_000, uss=280_000_000),
        Memory(rss=400_000_000, pss=390_000_000, uss=380_000_000),
    ]
    # 200 MB + 300 MB over 10,000 connections: 50 KB each (KB = 1,000 bytes).
    assert per_connection_kb(idle, held, 10_000) == {"pss": 50.0, "uss": 50.0, "rss": 50.0}
    assert per_connection_kb(idle, held, 0) == {"pss": None, "uss": None, "rss": None}


def test_the_kernel_tcp_memory_is_read_from_sockstat() -> None:
    sockstat = (
        "sockets: used 20431\n"
        "TCP: inuse 20012 orphan 0 tw 12 alloc 20020 mem 8123\n"
        "UDP: inuse 3 mem 2\n"
        "UDPLITE: inuse 0\n"
    )
    assert parse_sockstat(sockstat) == {"inuse": 20_012, "mem_pages": 8_123}
    with pytest.raises(ValueError):
        parse_sockstat("sockets: used 1\n")


def collect(pauses: GcPauses, generation: int, seconds: float, monkeypatch: pytest.MonkeyPatch) -> None:
    scripted_collection(pauses, monkeypatch, wall=(10.0, 10.0 + seconds), generation=generation)


def test_pauses_are_read_back_from_the_metrics_and_counted_over_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses = GcPauses()
    collect(pauses, 0, 0.002, monkeypatch)
    before = parse_gc_pauses(exposition(pauses))
    collect(pauses, 0, 0.003, monkeypatch)
    collect(pauses, 2, 0.1, monkeypatch)  # at the target: not over it
    collect(pauses, 2, 0.4, monkeypatch)
    after = parse_gc_pauses(exposition(pauses))
    assert {g: p.count for g, p in after.items()} == {"0": 2, "1": 0, "2": 2}
    assert after["2"].longest == pytest.approx(0.4)
    assert after["2"].seconds == pytest.approx(0.5)
    assert after["2"].buckets[0.1] == 1 and after["2"].buckets[float("inf")] == 2
    assert (over_target(before), over_target(after)) == (0, 1)
    assert pauses_between(before, after) == {
        "collections": {"0": 1, "1": 0, "2": 2},
        "over_100ms": 1,
        "longest_ms_so_far": {"0": 3.0, "1": 0.0, "2": 400.0},
        "longest_cpu_ms_so_far": {"0": 0.0, "1": 0.0, "2": 0.0},  # the test's clock moved only the wall
    }


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)
    assert percentile([1.234], 50, digits=2) == 1.23
    assert latency_percentiles([]) == {"p50": None, "p99": None, "max": None}


def test_the_worker_benchmark_reads_one_generation_between_two_scrapes(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.worker_gc import pauses_between as generation_between

    pauses = GcPauses()
    collect(pauses, 2, 0.002, monkeypatch)
    before = parse_gc_pauses(exposition(pauses))["2"]
    collect(pauses, 2, 0.04, monkeypatch)
    collect(pauses, 2, 0.06, monkeypatch)
    figures = generation_between(before, parse_gc_pauses(exposition(pauses))["2"])
    assert figures["count"] == 2
    assert figures["mean_ms"] == 50.0
    assert figures["longest_within_ms"] == 100.0
    assert figures["histogram_ms"]["50"] == 1 and figures["histogram_ms"]["inf"] == 2
