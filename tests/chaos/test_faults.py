"""Faults lose nothing: with votes, streams and bank syncs in flight, a worker is killed, the
Temporal dev server, an API process and PostgreSQL are restarted, and the bank fails for a while.
After each, the checks in `load.py` hold. Each scenario prints what it did and what it found
(`pytest -s tests/chaos` shows it); BADGES_CHAOS=long runs them longer, harder and repeated."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from tests.chaos.conftest import LONG, System
from tests.chaos.load import CONVERGE, Load, relink_if_logged_out
from tests.support import eventually

BEFORE = 8.0 if LONG else 1.0  # seconds of load before the fault
AFTER = 15.0 if LONG else 2.5  # and after each round of it; then the load stops and the checks start
DOWN = 10.0 if LONG else 2.0  # seconds a restarted server stays down
ROUNDS = 3 if LONG else 1


async def scenario(
    system: System, name: str, fault: Callable[[], Awaitable[str]], via: httpx.AsyncClient | None = None
) -> None:
    load = await Load.start(system, via=via)
    try:
        await asyncio.sleep(BEFORE)
        did = []
        for _ in range(ROUNDS):
            did.append(await fault())
            await asyncio.sleep(AFTER)
        await load.stop_posting()
        found = await load.verify()
    finally:
        await load.close()
    print(f"\n[chaos] {name}: {'; '.join(did)}\n[chaos]   found: {found}", flush=True)


async def test_a_worker_killed_with_sigkill(chaos_system: System) -> None:
    async def fault() -> str:
        killed = chaos_system.worker.pid
        await chaos_system.kill_worker()
        return f"SIGKILL to worker {killed}, worker {chaos_system.worker.pid} started"

    await scenario(chaos_system, "worker killed", fault)


async def test_the_temporal_server_restarted(chaos_system: System) -> None:
    async def fault() -> str:
        await chaos_system.restart_temporal(DOWN)
        return f"Temporal dev server stopped, down {DOWN:.0f} s, started again on its SQLite file"

    await scenario(chaos_system, "Temporal restarted", fault)


async def test_an_api_process_restarted(chaos_system: System) -> None:
    """Events go on arriving through a second API process while the one holding the streams is
    down: they reach the streams when they reconnect (with Last-Event-ID) to its successor."""
    async with chaos_system.another_api() as (other_api, other):

        async def fault() -> str:
            stopped = chaos_system.api.pid
            await chaos_system.restart_api()
            return (
                f"API {stopped} stopped (its streams cut) while events went on through API {other_api.pid},"
                f" API {chaos_system.api.pid} started on the same port"
            )

        await scenario(chaos_system, "API restarted", fault, via=other)


async def test_postgresql_restarted(chaos_system: System) -> None:
    async def fault() -> str:
        await chaos_system.restart_postgres(DOWN)
        return f"PostgreSQL shut down (fast: every connection cut), down {DOWN:.0f} s, started again"

    await scenario(chaos_system, "PostgreSQL restarted", fault)


async def test_the_bank_failing_for_a_while(chaos_system: System) -> None:
    faults = [
        # First: the sync stops until the member links again (update mode), while the rest wait.
        {"kind": "item_login_required", "count": 1},
        {"kind": "server_error", "count": 2},
        {"kind": "slow", "delay_ms": 2000, "count": 1},
    ]
    if LONG:
        # Each costs the product 30 s: the wait a 429 asks for, the Plaid client's timeout.
        faults += [{"kind": "rate_limit", "count": 2}, {"kind": "slow", "delay_ms": 31_000, "count": 1}]

    async def fault() -> str:
        for armed in faults:
            await chaos_system.sandbox.custom("/sandbox/faults", endpoint="/transactions/sync", **armed)

        async def used_up() -> bool:
            for linked in chaos_system.banks:
                chaos_system.relinked += (await relink_if_logged_out(chaos_system, linked))[1]
            return not (await chaos_system.sandbox.http.get("/sandbox/faults")).json()["faults"]

        await eventually(used_up, timeout=CONVERGE)
        return "the bank's /transactions/sync failed " + ", then ".join(
            f"{armed['count']}x {armed['kind']}"
            + (f" ({armed['delay_ms'] / 1000:.0f} s)" if "delay_ms" in armed else "")
            for armed in faults
        )

    await scenario(chaos_system, "bank failing", fault)
