"""What the API's metrics cost on the hot path: one request's histogram observation (method, route
template, status class) and one event's counter increment, with one process (plain
prometheus-client values) and with several (multiprocess mode: values in shared files). Each mode
runs in a process of its own, since prometheus-client picks its value class on import. Prints JSON.

    python -m bench.metrics_overhead [--calls 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time


def measure(calls: int) -> dict[str, float]:
    from badges.api.metrics import ApiMetrics

    metrics = ApiMetrics()
    child = metrics.requests.labels("POST", "/v1/events", "2xx")
    started = time.perf_counter()
    for _ in range(calls):
        child.observe(0.004)
    observe = (time.perf_counter() - started) / calls
    started = time.perf_counter()
    for _ in range(calls):
        metrics.requests.labels("POST", "/v1/events", "2xx").observe(0.004)
    labelled = (time.perf_counter() - started) / calls
    accepted = metrics.accepted["rest"]
    started = time.perf_counter()
    for _ in range(calls):
        accepted.inc()
    increment = (time.perf_counter() - started) / calls
    return {
        "observe_us": round(observe * 1e6, 3),
        "labels_and_observe_us": round(labelled * 1e6, 3),
        "counter_inc_us": round(increment * 1e6, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.calls)))
        return
    results = {}
    for mode in ("one_process", "multiprocess"):
        env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
        with tempfile.TemporaryDirectory() as folder:
            if mode == "multiprocess":
                env["PROMETHEUS_MULTIPROC_DIR"] = folder
            out = subprocess.run(
                [sys.executable, "-m", "bench.metrics_overhead", "--child", "--calls", str(args.calls)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        results[mode] = json.loads(out)
    print(
        json.dumps(
            {
                "bench": "metrics_overhead",
                "calls": args.calls,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
