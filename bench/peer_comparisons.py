"""Peer comparisons benchmark: `GET /v1/me/comparisons` under load at 1M members. Prints JSON.

A scratch database on the PostgreSQL at 127.0.0.1:5432 (DATABASE_URL's server, if set; dropped at
the end) gets 1M synthetic consenting members' `peer_inputs` (districts of very different sizes,
so some roll up; brackets, dependants, age ranges; savings rates, incomes, spending), and a real
release of them (the release activity's own computation, in this process, stored with the ledger
functions). The API runs as the benchmarks run it (`bench/stack.py`). `--tokens` of the members are
real API members (their token resolved, a data key made, their own evaluation document sealed),
and the load is open-loop: `--rate` requests a second for `--seconds`, each for the next member
in turn, p50 / p99 / max latency and errors counted. Timing figures are only worth comparing on
a quiet machine: the load average is printed with them.

    python -m bench.peer_comparisons [--members 1000000] [--tokens 2000] [--rate 200 | --rates 50 100 200]
        [--seconds 20] [--api-processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import httpx
import psycopg

from badges.activities.peer_stats import compute
from badges.api.catalogue import read_catalogue_file
from badges.db.engine import make_engine
from badges.db.insights import store_insights
from badges.db.keys import KeyStore, MasterKeys
from badges.db.peers import Budget, ReleasedGroup, complete_release, reserve_release
from badges.db.pool import open_pool
from badges.domain.catalogue import parse_catalogue
from badges.domain.definitions import BadgeDefinition
from badges.domain.peers import PeerInput
from badges.insights.peers import AGE_BANDS, DEPENDANTS, SALARY_BANDS, describe, plan_for, postcode_districts
from bench.stack import running_stack
from bench.stats import percentile

MONTH = date(2026, 10, 1)
IN_FLIGHT = 64
CATEGORIES = ("groceries", "eating_out", "transport", "shopping", "bills_utilities")


def synthetic_members(count: int, seed: int = 7) -> list[PeerInput]:
    """Members spread over districts by a long-tailed law (a few large, many small), with figures
    of plausible shape."""
    rng = random.Random(seed)
    districts = list(postcode_districts())
    rng.shuffle(districts)
    districts = districts[:3_000]
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(districts))]
    chosen = rng.choices(districts, weights=weights, k=count)
    brackets, ages = list(SALARY_BANDS), list(AGE_BANDS)
    members = []
    for district in chosen:
        members.append(
            PeerInput(
                month=MONTH,
                savings_rate=round(min(max(rng.gauss(0.08, 0.12), -1.0), 1.0), 4),
                salary_minor=int(rng.lognormvariate(12.4, 0.45)),
                spending={c: int(rng.lognormvariate(9.5, 0.6)) for c in CATEGORIES},
                postcode_district=district,
                age_range=rng.choice(ages),
                dependants=int(rng.choice(DEPENDANTS).rstrip("+")),
                salary_bracket=rng.choice(brackets),
            )
        )
    return members


def copy_members(database_url: str, members: list[PeerInput], ids: list[uuid.UUID]) -> float:
    """The members, their `peer_comparison` consent and their inputs, by COPY."""
    started = time.perf_counter()
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        new = [(member_id, member) for member_id, member in zip(ids, members, strict=True)]
        with cursor.copy("COPY members (id, subject_digest) FROM STDIN") as copy:
            for member_id, _ in new:
                copy.write_row((member_id, member_id.bytes * 2))
        with cursor.copy("COPY consents (user_id, scope, purpose, granted_at, expires_at) FROM STDIN") as copy:
            for member_id, _ in new:
                copy.write_row((member_id, "peer_comparison", "bench", "2026-11-01", "2027-11-01"))
        with cursor.copy(
            "COPY peer_inputs (user_id, seq, computed_at, month, savings_rate, salary_minor, spending,"
            " postcode_district, age_range, dependants, salary_bracket) FROM STDIN"
        ) as copy:
            for member_id, m in new:
                copy.write_row(
                    (
                        member_id, 1, "2026-11-01T00:00:00Z", m.month, m.savings_rate, m.salary_minor,
                        json.dumps(m.spending), m.postcode_district, m.age_range, m.dependants, m.salary_bracket,
                    )
                )  # fmt: skip
        conn.commit()
        cursor.execute("ANALYZE members, consents, peer_inputs")
    return time.perf_counter() - started


async def api_members(api_url: str, count: int) -> list[tuple[dict[str, str], uuid.UUID]]:
    """`count` members as the API knows them: a dev token each, resolved to its member."""
    found: list[tuple[dict[str, str], uuid.UUID]] = []
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:

        async def one(index: int) -> None:
            async with limit:
                token = await http.post("/v1/dev/token", json={"sub": f"bench-peer-{index}@example.com"})
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                me = await http.get("/v1/me", headers=headers)
                found.append((headers, uuid.UUID(me.json()["userId"])))

        await asyncio.gather(*(one(index) for index in range(count)))
    return found


def document_for(member: PeerInput, rng: random.Random) -> dict[str, Any]:
    """A small evaluation document: the month before and the month of the member's figures."""
    previous = {c: int(v * rng.uniform(0.8, 1.2)) for c, v in member.spending.items()}
    return {
        "months": [
            {"month": "2026-09-01", "complete": True, "savingsRate": round(rng.gauss(0.08, 0.1), 4),
             "spendingByCategory": previous},
            {"month": "2026-10-01", "complete": True, "savingsRate": member.savings_rate,
             "spendingByCategory": member.spending},
        ]
    }  # fmt: skip


async def load(
    api_url: str, tokens: list[dict[str, str]], rate: float, seconds: float, path: str = "/v1/me/comparisons"
) -> dict[str, Any]:
    """Open loop: a request every 1/rate s, each for the next member, whatever the answers do.
    At most IN_FLIGHT at once (aiohttp; httpx's pool slows down badly with thousands queued):
    latency is taken from when each request is sent, and how late sends were is reported."""
    latencies: list[float] = []
    first_reads: list[float] = []  # a member's first request of the run (audited: one a minute)
    late: list[float] = []
    statuses: dict[str, int] = {}
    slots = asyncio.Semaphore(IN_FLIGHT)
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(api_url, connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:

        async def one(headers: dict[str, str], due: float, first: bool = False) -> None:
            async with slots:
                started = time.perf_counter()
                late.append((started - due) * 1000)
                try:
                    async with http.get(path, headers=headers) as answer:
                        body = await answer.json()
                        key = str(answer.status)
                        if answer.status == 200 and body.get("status", "ready") != "ready":
                            key = f"200-{body.get('status')}"
                except (aiohttp.ClientError, TimeoutError) as error:
                    key = type(error).__name__
                latencies.append((time.perf_counter() - started) * 1000)
                if first:
                    first_reads.append(latencies[-1])
                statuses[key] = statuses.get(key, 0) + 1

        for warm in tokens[:50]:  # connections opened, code paths warm
            await one(warm, time.perf_counter())
        latencies.clear()
        first_reads.clear()
        late.clear()
        statuses.clear()
        total = int(rate * seconds)
        began = time.perf_counter()
        tasks = []
        for index in range(total):
            due = began + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(tokens[index % len(tokens)], due, first=index < len(tokens))))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - began
    errors = sum(count for key, count in statuses.items() if key != "200")
    return {
        "requests": total,
        "rate_asked": rate,
        "rate_achieved": round(total / wall, 1),
        "distinct_members": min(len(tokens), total),
        "p50_ms": percentile(latencies, 50, digits=2),
        "p90_ms": percentile(latencies, 90, digits=2),
        "p99_ms": percentile(latencies, 99, digits=2),
        "max_ms": round(max(latencies), 2),
        "first_read_p50_ms": percentile(first_reads, 50, digits=2),
        "first_read_p99_ms": percentile(first_reads, 99, digits=2),
        "send_late_p99_ms": percentile(late, 99, digits=2),
        "errors": errors,
        "statuses": statuses,
        "target_p99_ms": 50,
    }


@contextlib.contextmanager
def profiled(pids: list[int], output: str | None, seconds: float) -> Iterator[None]:
    """With `output`, the API's stacks sampled by py-spy (when it is installed) while the load
    runs, as raw folded stacks in `output` (one file per process)."""
    spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    recorders = []
    if output and spy:
        for pid in pids:
            command = [spy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate", "250"]
            command += ["--duration", str(int(seconds) + 5), "-o", f"{output}.{pid}"]
            recorders.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.wait()


async def prepare(stack: Any, members: int, tokens: int) -> dict[str, Any]:
    database_url = stack.settings.libpq_url
    population = synthetic_members(members)
    known = await api_members(stack.api_url, tokens)
    ids = [member_id for _, member_id in known]
    # The API's members first (their rows exist): their consent and inputs; then everyone else.
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO consents (user_id, scope, purpose, granted_at, expires_at)"
            " VALUES (%s, 'peer_comparison', 'bench', now(), now() + interval '300 days')",
            [(member_id,) for member_id in ids],
        )
        cursor.executemany(
            "INSERT INTO peer_inputs (user_id, seq, computed_at, month, savings_rate, salary_minor, spending,"
            " postcode_district, age_range, dependants, salary_bracket) VALUES (%s, 1, now(), %s, %s, %s, %s, %s,"
            " %s, %s, %s)",
            [
                (i, m.month, m.savings_rate, m.salary_minor, json.dumps(m.spending), m.postcode_district,
                 m.age_range, m.dependants, m.salary_bracket)
                for i, m in zip(ids, population[:tokens], strict=True)
            ],
        )  # fmt: skip
        conn.commit()
    copied = copy_members(database_url, population[tokens:], [uuid.uuid4() for _ in range(len(population) - tokens)])
    pool = await open_pool(database_url)
    engine = make_engine(stack.settings.database_url)
    try:
        keys = KeyStore(engine, MasterKeys(stack.settings.parsed_master_keys))
        rng = random.Random(11)
        for member_id, member in zip(ids, population[:tokens], strict=True):
            await store_insights(pool, keys, member_id, 1, datetime.now(UTC), document_for(member, rng))
        specs = parse_catalogue(read_catalogue_file("")).badges
        catalogue = [BadgeDefinition.from_spec(badge_id, 1, spec) for badge_id, spec in sorted(specs.items())]
        plan = plan_for(catalogue, stack.settings.peer_release_epsilon, stack.settings.peer_min_group_size)
        started = time.perf_counter()
        result = await asyncio.to_thread(compute, population, plan)
        release_seconds = time.perf_counter() - started
        release_id = uuid.uuid4()
        now = datetime.now(UTC)
        budget = Budget(stack.settings.peer_release_epsilon, stack.settings.peer_yearly_epsilon)
        await reserve_release(
            pool, release_id, plan.epsilon, budget, requested_by="operator", mechanism="bench",
            parameters=describe(plan), now=now,
        )  # fmt: skip
        await complete_release(
            pool,
            release_id,
            epsilon=result.epsilon,
            delta=result.delta,
            population=result.population,
            parameters=describe(plan),
            groups=[ReleasedGroup(g.dimension, g.level, g.key, g.noisy_count, dict(g.values)) for g in result.groups],
            now=datetime.now(UTC),
        )
    finally:
        await pool.close()
        await engine.dispose()
    del population
    gc.collect()
    gc.freeze()  # the load generator should not walk what preparing left behind
    return {
        "tokens": known,
        "copy_seconds": round(copied, 1),
        "release_seconds_in_process": round(release_seconds, 1),
        "groups_published": len(result.groups),
        "rolled_up": result.rolled_up,
        "release_epsilon": result.epsilon,
    }


def drop_database(database_url: str) -> None:
    base, _, query = database_url.partition("?")
    name = base.rsplit("/", 1)[1]
    admin = base.rsplit("/", 1)[0] + "/postgres" + (f"?{query}" if query else "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with running_stack(workers=0, api_processes=args.api_processes) as stack:
        try:
            prepared = await prepare(stack, args.members, args.tokens)
            tokens = [headers for headers, _ in prepared.pop("tokens")]
            before = os.getloadavg()
            runs = []
            for number, rate in enumerate(args.rates or [args.rate]):
                if number:
                    # Members' audit windows (a minute) end: each rate's first reads are first again.
                    await asyncio.sleep(61)
                cpu_before = stack.cpu_seconds()
                with profiled(stack.pids["api"], args.profile and f"{args.profile}.{rate:g}", args.seconds):
                    measured = await load(stack.api_url, tokens, rate, args.seconds, args.path)
                cpu = stack.cpu_seconds()
                served = measured["requests"] + 50  # and the warm-up's
                measured["api_cpu_ms_per_request"] = round((cpu["api"] - cpu_before["api"]) / served * 1000, 2)
                measured["postgres_cpu_ms_per_request"] = round(
                    (cpu["postgres"] - cpu_before["postgres"]) / served * 1000, 2
                )
                measured["load_average"] = os.getloadavg()
                runs.append(measured)
        finally:
            drop_database(stack.settings.libpq_url)
    return {
        "members": args.members,
        "path": args.path,
        "api_processes": args.api_processes,
        **prepared,
        "comparisons": runs[0] if len(runs) == 1 else runs,
        "cpu_seconds": {name: round(value, 1) for name, value in cpu.items()},
        "bench_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average_before_load": before,
        "load_average_after": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--tokens", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--rates", type=float, nargs="+", help="several rates, one after another (a minute apart)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument("--profile", help="sample the API with py-spy during each load, to FILE.<rate>.<pid>")
    parser.add_argument("--path", default="/v1/me/comparisons", help="another path, for a baseline (e.g. /v1/me)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2, default=str))


if __name__ == "__main__":
    main()
