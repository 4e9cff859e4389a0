"""What one workflow task costs the Temporal dev server, by how the event reaches the workflow
(JSON on stdout): the floor under issue 16's CPU per event.

    .venv/bin/python -m bench.task_floor [--rate 100] [--seconds 15] [--workflows 1000] [--repeats 2]

Starts the dev server on a SQLite file (as every bench stack does) and, for each way, N running
workflows on one worker in this process; then sends `--rate` events a second for `--seconds`, each
to the next workflow in turn (so no two events share a workflow task, as a programme's members'
events do not), and reports the server's CPU milliseconds per event, this process's (client and
worker), and the caller's latency p50 / p99. Ways: a signal; a signal whose workflow task runs a
local activity (the real path's shape); an Update (its workflow task is speculative: written to
the history only when it completes); an Update that runs the local activity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench.bare_workflow import BareSignalLocalActivityWorkflow, BareSignalWorkflow, BareUpdateWorkflow, bare_write
from bench.stack import process_cpu_seconds
from bench.stats import percentile
from tests.processes import start_temporal
from tests.support import free_port

WAYS = ("signal", "signal_local_activity", "update", "update_local_activity")


async def start(client: Client, way: str, task_queue: str) -> WorkflowHandle[Any, Any]:
    workflow_id = f"{way}/{uuid.uuid4()}"
    if way == "signal":
        return await client.start_workflow(BareSignalWorkflow.run, id=workflow_id, task_queue=task_queue)
    if way == "signal_local_activity":
        return await client.start_workflow(BareSignalLocalActivityWorkflow.run, id=workflow_id, task_queue=task_queue)
    return await client.start_workflow(
        BareUpdateWorkflow.run, way == "update_local_activity", id=workflow_id, task_queue=task_queue
    )


async def send(handle: WorkflowHandle[Any, Any], way: str) -> None:
    if way.startswith("update"):
        await handle.execute_update(BareUpdateWorkflow.bump)
    else:
        await handle.signal("bump")


async def measure(client: Client, server_pid: int, way: str, args: argparse.Namespace) -> dict[str, Any]:
    task_queue = f"floor-{uuid.uuid4()}"
    workflows = [BareSignalWorkflow, BareSignalLocalActivityWorkflow, BareUpdateWorkflow]
    async with Worker(client, task_queue=task_queue, workflows=workflows, activities=[bare_write]):
        handles = [await start(client, way, task_queue) for _ in range(args.workflows)]
        await asyncio.sleep(3)  # the starts' first workflow tasks done
        latencies: list[float] = []

        async def one(handle: WorkflowHandle[Any, Any]) -> None:
            began = time.perf_counter()
            await send(handle, way)
            latencies.append(1000 * (time.perf_counter() - began))

        server_before, own_before = process_cpu_seconds(server_pid), time.process_time()
        sends: list[asyncio.Task[None]] = []
        began = time.perf_counter()
        while (elapsed := time.perf_counter() - began) < args.seconds:
            sends.append(asyncio.create_task(one(handles[len(sends) % len(handles)])))
            await asyncio.sleep(max(0.0, len(sends) / args.rate - elapsed))
        await asyncio.gather(*sends)
        await asyncio.sleep(2)  # the last tasks' completions
        server, own = process_cpu_seconds(server_pid) - server_before, time.process_time() - own_before
        await asyncio.gather(*(handle.terminate() for handle in handles))
    return {
        "way": way,
        "events": len(sends),
        "server_cpu_ms_per_event": round(1000 * server / len(sends), 2),
        "client_and_worker_cpu_ms_per_event": round(1000 * own / len(sends), 2),
        "latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)},
    }


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="badges-floor-"))
    port = free_port()
    with open(folder / "temporal.log", "ab") as log:
        server = start_temporal(port, folder / "temporal.db", log)
        try:
            client = await Client.connect(f"127.0.0.1:{port}")
            runs = [await measure(client, server.pid, way, args) for _ in range(args.repeats) for way in args.ways]
        finally:
            server.terminate()
            server.wait()
    print(json.dumps({"rate": args.rate, "seconds": args.seconds, "workflows": args.workflows, "runs": runs}, indent=2))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2, help="each way this many times, interleaved")
    parser.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS))
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
