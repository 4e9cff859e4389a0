"""Do the API's hot paths leave reference cycles that its periodic freeze (`badges.heap.
keep_survivors_frozen`) would keep for ever? An object frozen while alive and part of a cycle
that later becomes garbage is never collected: the collector does not look at frozen objects.

One API process (the real app, plus a `/_heap` route of this benchmark's) on a stack of its own
(`bench.stack`); `--cycles` SSE connects and disconnects, then WebSocket ones, then
`POST /v1/events`, `--concurrency` at a time, from a pool of `--members`. After each phase it
reads the process's tracked objects (`gc.get_objects()` and `gc.get_freeze_count()`), its RSS and
the objects the collector has freed since start (the GC-pause recorder's count). Modes:

- `freeze`: survivors frozen every `--freeze-every` seconds (the API's policy); at the end, a full
  collection, then `gc.unfreeze()` and another: what the second frees is cyclic garbage the
  freezes hid;
- `plain`: no periodic freeze (start-up's freeze only): the cycles each phase makes are what the
  collector frees during it;
- `saveall`: as `plain` with `gc.DEBUG_SAVEALL` on a small run: the types of what each phase's
  cycles hold.

    .venv/bin/python -m bench.heap_cycles --cycles 10000 --modes freeze plain
    .venv/bin/python -m bench.heap_cycles --cycles 200 --modes saveall
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp

from bench.stack import Stack, running_stack, settle
from tests.support import free_port, real_time_event

PHASES = ("sse", "ws", "events")


# --- the API process: the app and a /_heap route ------------------------------------------------


def serve(port: int, mode: str, freeze_every: float) -> None:
    import psutil
    import uvicorn
    from fastapi import FastAPI

    from badges.api.app import create_app
    from badges.config import Settings
    from badges.heap import freeze_startup_heap, gc_pauses, keep_survivors_frozen

    settings = Settings()  # type: ignore[call-arg]
    app: FastAPI = create_app(settings, keep_heap_frozen=False)

    @app.get("/_heap", include_in_schema=False)
    async def heap(collect: bool = False, unfreeze: bool = False) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        if collect:
            answer["collected_now"] = gc.collect()
        if unfreeze:
            gc.unfreeze()
            answer["collected_after_unfreeze"] = gc.collect()
        if gc.garbage:
            kinds = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
            answer["garbage"] = len(gc.garbage)
            answer["garbage_types"] = dict(kinds.most_common(25))
            gc.garbage.clear()
        answer |= {
            "tracked": len(gc.get_objects()),
            "frozen": gc.get_freeze_count(),
            "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
            "freed_by_collector": sum(p.collected for p in gc_pauses().pauses().values()),
        }
        return answer

    freeze_startup_heap()
    if mode == "saveall":
        gc.set_debug(gc.DEBUG_SAVEALL)

    async def main() -> None:
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                log_level="warning",
                ws_max_size=settings.ws_max_size,
                ws_per_message_deflate=False,
                access_log=False,
            )
        )
        freezer = asyncio.create_task(keep_survivors_frozen(freeze_every)) if mode == "freeze" else None
        await server.serve()
        if freezer is not None:
            freezer.cancel()

    asyncio.run(main())


# --- the load -------------------------------------------------------------------------------


async def cycle(http: aiohttp.ClientSession, phase: str, headers: dict[str, str], sub: str) -> bool:
    if phase == "sse":
        async with http.get("/v1/me/stream", headers=headers) as response:
            return response.status == 200
    if phase == "ws":
        async with http.ws_connect("/v1/me/ws", headers=headers, heartbeat=None) as websocket:
            return not websocket.closed
    async with http.post("/v1/events", json=real_time_event(uuid.uuid4().hex, sub), headers=headers) as response:
        await response.read()
        return response.status in (200, 202)


async def run_phase(
    http: aiohttp.ClientSession, phase: str, members: list[tuple[str, dict[str, str]]], count: int, concurrency: int
) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    failed = 0

    async def one(index: int) -> None:
        nonlocal failed
        sub, headers = members[index % len(members)]
        async with gate:
            try:
                if not await cycle(http, phase, headers, sub):
                    failed += 1
            except (aiohttp.ClientError, TimeoutError):
                failed += 1

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return {"cycles": count, "failed": failed, "seconds": round(time.perf_counter() - began, 1)}


async def heap(http: aiohttp.ClientSession, **flags: bool) -> dict[str, Any]:
    async with http.get("/_heap", params={k: "true" for k, v in flags.items() if v}) as response:
        return dict(await response.json())


async def measure(stack: Stack, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    from badges.api.auth import issue_token

    port = free_port()
    command = [sys.executable, "-m", "bench.heap_cycles", "--serve", str(port), mode, str(args.freeze_every)]
    process = subprocess.Popen(command, env=stack.env, stdout=stack.log, stderr=stack.log)
    try:
        from badges.cli.dev import wait_for_port

        wait_for_port("127.0.0.1", port, 60, process)
        members = []
        for _ in range(args.members):
            sub = f"heap-{uuid.uuid4()}"
            members.append((sub, {"Authorization": f"Bearer {issue_token(stack.settings, sub, ['user'])}"}))
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", timeout=timeout, connector=connector) as http:
            # Every member seen once on each path: its row, its key, the code paths loaded.
            for phase in PHASES:
                await run_phase(http, phase, members, len(members), args.concurrency)
            await settle(stack)
            await asyncio.sleep(args.freeze_every + 1)
            outcome: dict[str, Any] = {"mode": mode, "start": await heap(http, collect=mode != "freeze")}
            for phase in PHASES:
                load = await run_phase(http, phase, members, args.cycles, args.concurrency)
                await asyncio.sleep(args.freeze_every + 1)  # a freeze after the last connection closed
                outcome[phase] = {**load, **await heap(http, collect=mode != "freeze")}
                print(f"{mode} {phase}: {json.dumps(outcome[phase])}", file=sys.stderr, flush=True)
            outcome["end"] = await heap(http, collect=True)
            outcome["end_unfrozen"] = await heap(http, unfreeze=True)
            outcome["process_pid"] = process.pid
            outcome["load_average"] = [round(v, 2) for v in os.getloadavg()]
            return outcome
    finally:
        process.terminate()
        process.wait(10)


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    # Each member sends many events in a phase: the path measured is acceptance, not the rate limit.
    with running_stack(workers=1, batch_workers=0, extra_env={"BADGES_MEMBER_EVENT_RATE": "100000/minute"}) as stack:
        return [await measure(stack, mode, args) for mode in args.modes]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=10_000, help="connects (or events) per phase")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--freeze-every", type=float, default=5.0, help="seconds (badges.heap.FREEZE_SECONDS)")
    parser.add_argument("--modes", nargs="+", choices=("freeze", "plain", "saveall"), default=["freeze", "plain"])
    return parser.parse_args(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
    else:
        print(json.dumps(asyncio.run(main(parse_args())), indent=2))
