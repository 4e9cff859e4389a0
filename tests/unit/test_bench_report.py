"""`make bench`'s report (bench/all.py): the benchmarks' JSON put together with the machine's
description, and each benchmark's headline figures compared with the previous report's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.all import (
    BENCHMARKS,
    REPORT_KIND,
    assemble,
    compare,
    format_table,
    machine_description,
    plan,
    present,
    previous_report,
    report_path,
    resolve,
)

REALTIME = {
    "scenarios": [
        {"scenario": "warm", "offered_events_per_s": 50, "event_to_update_ms": {"p50": 40.0, "p99": 90.0}},
        {"scenario": "warm", "offered_events_per_s": 100.0, "event_to_update_ms": {"p50": 57.0, "p99": 119.0}},
        {"scenario": "cold", "offered_events_per_s": 100, "event_to_update_ms": {"p50": 300.0, "p99": 995.0}},
    ],
    "bare_temporal_signals": {"signals_per_s": 758.6},
}


def report(runs: dict[str, Any], started: str = "2026-12-07T23:00:00+00:00") -> dict[str, Any]:
    built = assemble({"cpus": 2}, {name: {"result": result} for name, result in runs.items()},
                     started=datetime.fromisoformat(started), quick=False)  # fmt: skip
    return built


def test_a_path_picks_list_items_by_their_fields_or_position_and_keys_with_dots() -> None:
    assert resolve(REALTIME, "scenarios[scenario=warm,offered_events_per_s=100].event_to_update_ms.p99") == 119.0
    assert resolve(REALTIME, "scenarios[scenario=cold].event_to_update_ms.p99") == 995.0
    assert resolve(REALTIME, "scenarios[-1].scenario") == "cold"
    assert resolve({"sizes": {"1000": {"savingsRate.p95": {"abs": 0.4}}}}, "sizes.1000.savingsRate.p95.abs") == 0.4
    assert resolve([{"held": 10}, {"held": 20}], "[-1].held") == 20
    # Whatever is not there is None, never an error: a benchmark's output may change.
    assert resolve(REALTIME, "scenarios[scenario=warm,offered_events_per_s=300].event_to_update_ms.p99") is None
    assert resolve(REALTIME, "scenarios[7].scenario") is None
    assert resolve(REALTIME, "bare_temporal_signals.signals_per_s.more") is None
    assert resolve(None, "anything") is None


def test_every_headline_resolves_in_the_shape_its_benchmark_prints() -> None:
    realtime = next(b for b in BENCHMARKS if b.name == "realtime")
    found = {path: resolve(REALTIME, path) for path in realtime.headlines}
    assert found["scenarios[scenario=warm,offered_events_per_s=100].event_to_update_ms.p99"] == 119.0
    assert found["bare_temporal_signals.signals_per_s"] == 758.6


def test_headlines_resolve_in_the_raw_json_the_benchmarks_last_wrote() -> None:
    """Against committed output, so a headline that names a field its benchmark never printed (as
    bench.availability's once did) is caught."""
    written = {
        "availability": "results-availability-50-quiet.json",
        "task_floor": "results-task-floor.json",
        "connections": "results-connections-50k-quiet.json",
    }
    bench_dir = Path(__file__).resolve().parents[2] / "bench"
    for benchmark in (b for b in BENCHMARKS if b.name in written):
        result = json.loads((bench_dir / written[benchmark.name]).read_text())
        missing = [path for path in benchmark.headlines if resolve(result, path) is None]
        assert not missing, (benchmark.name, missing)


def test_the_comparison_gives_each_headline_its_previous_value_and_change() -> None:
    previous = report({"realtime": REALTIME})
    newer = json.loads(json.dumps(REALTIME))
    newer["scenarios"][1]["event_to_update_ms"]["p99"] = 95.2
    del newer["bare_temporal_signals"]
    current = report({"realtime": newer, "sync": {"transactions_per_second": 7000.0}})
    rows = {(row["benchmark"], row["figure"]): row for row in compare(previous, current)}
    p99 = rows[("realtime", "scenarios[scenario=warm,offered_events_per_s=100].event_to_update_ms.p99")]
    assert (p99["previous"], p99["now"], p99["change_pct"]) == (119.0, 95.2, -20.0)
    gone = rows[("realtime", "bare_temporal_signals.signals_per_s")]
    assert (gone["previous"], gone["now"], gone["change_pct"]) == (758.6, None, None)
    new = rows[("sync", "transactions_per_second")]
    assert (new["previous"], new["now"], new["change_pct"]) == (None, 7000.0, None)
    # A skipped or failed benchmark (no result) has no rows.
    current["benchmarks"]["peers"] = {"skipped": "not here", "result": None}
    assert not [row for row in compare(previous, current) if row["benchmark"] == "peers"]
    table = format_table(compare(previous, current), "results-2026-12-06.json")
    assert "Against results-2026-12-06.json" in table
    warm_p99 = "`scenarios[scenario=warm,offered_events_per_s=100].event_to_update_ms.p99`"
    assert f"| realtime | {warm_p99} | 119.0 | 95.2 | -20.0 % |" in table
    assert "| sync | `transactions_per_second` | — | 7,000.0 |  |" in table


def test_with_no_previous_report_every_figure_stands_alone() -> None:
    rows = compare(None, report({"realtime": REALTIME}))
    assert rows and all(row["previous"] is None and row["change_pct"] is None for row in rows)
    assert format_table(rows, None).startswith("No previous report")


def test_the_report_holds_the_machine_the_runs_and_when() -> None:
    built = report({"realtime": REALTIME})
    assert built["kind"] == REPORT_KIND and built["machine"] == {"cpus": 2} and built["form"] == "full"
    assert built["benchmarks"]["realtime"]["result"] == REALTIME
    assert built["started"] == "2026-12-07T23:00:00+00:00" and "finished" in built


def test_the_machine_is_described() -> None:
    machine = machine_description()
    for key in ("cpu_model", "cpus", "memory_gib", "kernel", "python", "temporal", "postgresql_embedded",
                "postgresql_local", "git_commit", "date", "load_average_at_start"):  # fmt: skip
        assert key in machine
    assert machine["cpus"] and machine["python"].count(".") == 2 and len(machine["load_average_at_start"]) == 3


def test_the_previous_report_is_the_newest_made_by_bench_all(tmp_path: Path) -> None:
    def write(name: str, content: dict[str, Any]) -> Path:
        (tmp_path / name).write_text(json.dumps(content))
        return tmp_path / name

    write("results-sync.json", {"transactions_per_second": 1})  # one benchmark's own file: not a report
    older = write("results-2026-12-01.json", report({}, "2026-12-01T10:00:00+00:00"))
    newer = write("results-2026-12-05.json", report({}, "2026-12-05T10:00:00+00:00"))
    (tmp_path / "results-broken.json").write_text("{")
    assert previous_report(tmp_path) == newer
    assert previous_report(tmp_path, before=newer) == older
    started = datetime(2026, 12, 5, 11, tzinfo=UTC)
    assert report_path(tmp_path, started) == tmp_path / "results-2026-12-05-2.json"
    assert report_path(tmp_path, datetime(2026, 12, 8, tzinfo=UTC)) == tmp_path / "results-2026-12-08.json"


def test_the_plan_lists_each_command_and_the_expected_minutes() -> None:
    chosen = [b for b in BENCHMARKS if b.name in ("realtime", "contacts", "availability")]
    shown = plan(chosen, quick=True).splitlines()
    assert shown[0].endswith("python -m bench.realtime --rates 100 --duration 10 --cold-rates --bare-seconds 5")
    # bench.availability comes from another branch: skipped, and not counted, while it is not here.
    expected = sum(b.minutes[1] for b in chosen if b.name != "availability" or present("availability"))
    assert shown[-1].split()[0] == f"{expected:g}"
