"""Bank sync throughput: N members each link a bank with 12 months of history (the sandbox bank,
over Plaid's API through plaid-python) and the stack syncs and stores it all.

    .venv/bin/python -m bench.sync                      # 1,000 members, JSON on stdout
    .venv/bin/python -m bench.sync --members 100         # a quick look

It starts its own stack (dev server on a SQLite file, embedded PostgreSQL or DATABASE_URL's
server, the sandbox bank, N workers, one API process), grants every member `open_banking`
consent, links them through the public API (link token, the bank's Link stand-in, public token
exchange), and measures from the first link until every connection has applied its first full
batch: transactions stored per second, each connection's time from link to synced, and the CPU
each component spent per 1,000 transactions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from badges.api.auth import issue_token
from badges.banking.sandbox.personas import PERSONAS as SANDBOX_PERSONAS
from bench.stack import Stack, running_stack
from bench.stats import percentile

# Members are spread over every sandbox persona in turn.
PERSONAS = tuple(SANDBOX_PERSONAS)


async def consent_all(
    client: httpx.AsyncClient, tokens: list[str], concurrency: int, scopes: tuple[str, ...] = ("open_banking",)
) -> None:
    expires = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    body = {"scopes": {scope: {"purpose": "benchmark", "expiresAt": expires} for scope in scopes}}
    gate = asyncio.Semaphore(concurrency)

    async def one(token: str) -> None:
        async with gate:
            response = await client.put("/v1/me/consent", json=body, headers={"Authorization": f"Bearer {token}"})
            response.raise_for_status()

    await asyncio.gather(*(one(token) for token in tokens))


async def link_all(
    client: httpx.AsyncClient, bank: httpx.AsyncClient, tokens: list[str], concurrency: int
) -> list[float]:
    """Link every member's bank through the API; answers each link's seconds."""
    gate = asyncio.Semaphore(concurrency)
    durations: list[float] = []

    async def one(index: int, token: str) -> None:
        async with gate:
            started = time.monotonic()
            await link_bank(client, bank, token, PERSONAS[index % len(PERSONAS)])
            durations.append(time.monotonic() - started)

    await asyncio.gather(*(one(index, token) for index, token in enumerate(tokens)))
    return durations


async def link_bank(client: httpx.AsyncClient, bank: httpx.AsyncClient, token: str, persona: str) -> None:
    """What a member's app does: a link token from the API, Link at the bank (the sandbox's
    stand-in, as `persona`), then the public token back to the API. Raises on any refusal."""
    headers = {"Authorization": f"Bearer {token}"}
    link = await client.post("/v1/me/bank/link-token", json={"provider": "plaid"}, headers=headers)
    link.raise_for_status()
    done = await bank.post("/sandbox/link/complete", json={"link_token": link.json()["linkToken"], "username": persona})
    done.raise_for_status()
    body = {"provider": "plaid", "publicToken": done.json()["public_token"]}
    connected = await client.post("/v1/me/bank/connections", json=body, headers=headers)
    connected.raise_for_status()


@asynccontextmanager
async def api_and_bank(stack: Stack, concurrency: int) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """HTTP clients for the stack's API and for its sandbox bank (with the programme's Plaid
    credentials), each with room for `concurrency` requests in flight."""
    credentials = {"PLAID-CLIENT-ID": stack.settings.plaid_client_id, "PLAID-SECRET": stack.settings.plaid_secret}
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with (
        httpx.AsyncClient(base_url=stack.api_url, timeout=120, limits=limits) as client,
        httpx.AsyncClient(base_url=stack.settings.plaid_host, timeout=120, headers=credentials, limits=limits) as bank,
    ):
        yield client, bank


def counts(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT (SELECT count(*) FROM consents WHERE scope = 'open_banking'),"
            " (SELECT count(*) FROM bank_connections),"
            " (SELECT count(*) FROM bank_connections WHERE last_synced_at IS NOT NULL),"
            " (SELECT count(*) FROM bank_transactions)"
        ).fetchone()
    assert row is not None
    return {"consents": row[0], "connections": row[1], "synced": row[2], "transactions": row[3]}


def first_sync_seconds(database_url: str) -> list[float]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT extract(epoch FROM last_synced_at - created_at) FROM bank_connections"
            " WHERE last_synced_at IS NOT NULL"
        ).fetchall()
    return [float(row[0]) for row in rows]


async def wait_for(database_url: str, key: str, target: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        now = await asyncio.to_thread(counts, database_url)
        if now[key] >= target or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.5)


async def run(stack: Stack, members: int, concurrency: int, timeout: float) -> dict[str, Any]:
    database_url = stack.settings.libpq_url
    tokens = [issue_token(stack.settings, f"bench-{index}@example.com", ["user"]) for index in range(members)]
    async with api_and_bank(stack, concurrency) as (client, bank):
        await consent_all(client, tokens, concurrency)
        consented = await wait_for(database_url, "consents", members, 300)
        if consented["consents"] < members:
            raise SystemExit(f"only {consented['consents']} of {members} consents were recorded")
        cpu_before = stack.cpu_seconds()
        started = time.monotonic()
        link_seconds = await link_all(client, bank, tokens, concurrency)
        linked_after = time.monotonic() - started
        final = await wait_for(database_url, "synced", members, timeout)
        elapsed = time.monotonic() - started
    cpu_after = stack.cpu_seconds()
    stored = final["transactions"]
    synced = first_sync_seconds(database_url)
    cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
    return {
        "members": members,
        "connections_synced": final["synced"],
        "transactions_stored": stored,
        "transactions_per_member": round(stored / max(1, final["synced"]), 1),
        "seconds_first_link_to_all_synced": round(elapsed, 1),
        "seconds_to_link_all": round(linked_after, 1),
        "transactions_per_second": round(stored / elapsed, 1),
        "link_request_seconds": {
            "p50": round(percentile(link_seconds, 50) or 0, 3),
            "p99": round(percentile(link_seconds, 99) or 0, 3),
        },
        "link_to_synced_seconds": {
            q: round(percentile(synced, n) or 0, 2) for q, n in (("p50", 50), ("p95", 95), ("p99", 99))
        },
        "cpu_seconds": {name: round(value, 1) for name, value in cpu.items()},
        "cpu_ms_per_1000_transactions": {
            name: round(value * 1000 / max(1, stored) * 1000, 1) for name, value in cpu.items()
        },
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32, help="links in flight at once")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for every first sync")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with running_stack(workers=args.workers, bank=True) as stack:
        result = asyncio.run(run(stack, args.members, args.concurrency, args.timeout))
    result["workers"] = args.workers
    json.dump(result, sys.stdout, indent=2)
    print()
    if result["connections_synced"] < args.members:
        sys.exit(f"only {result['connections_synced']} of {args.members} connections synced in {args.timeout} s")


if __name__ == "__main__":
    main()
