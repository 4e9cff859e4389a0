"""Peer-statistics benchmark: the cost and the accuracy of a release. Prints JSON.

- `release`: wall time and peak memory (the process's maximum RSS) of one release for 100k and
  1M synthetic members, including the database read: the members are written into a scratch
  database's `members`, `consents` and `peer_inputs` first (created and dropped on
  127.0.0.1:5432, as the tests do; `BADGES_TEST_ADMIN_URL` overrides), then a fresh process
  times the real `consenting_inputs` and the computation (`activities.peer_stats.compute`) with
  the shipped catalogue's plan at the default budget. Targets at 1M: ≤ 15 s, ≤ 2 GiB.
- `accuracy`: groups of 50, 200, 1,000 and 10,000 synthetic members, over repeated releases of a
  badge dimension's statistics at the default budget (`dimension_statistics`: what a release
  computes for a published group of that size): p50 / p95 of |DP - true| for the savings rate's
  p95 (the badge target, in percentage points; the share of groups within 2 points) and every
  other released quantile, the percentile-rank error, and the coverage of each `X.error` (the
  share of values whose true rank, or true mean, lies within it). Targets at n ≥ 1,000: median
  |DP p95 - true p95| ≤ 1.5 points, ≥ 90 % of groups within 2 points.

Synthetic members: monthly income log-normal (median £2,500, sd 0.45); savings rate 1 - the
month's spending-to-income ratio, log-normal (median 0.905, sd 0.25: median rate 9.5 %, p95 40 %);
spending by category a share of income; districts skewed over about 2,900 districts.

    python -m bench.peers [--scenario release|accuracy|all] [--members 100000,1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from importlib import resources
from typing import Any

import numpy as np
import polars as pl
import psycopg

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
SIZES = (50, 200, 1_000, 10_000)
# Members per size in one accuracy run (several groups of the size at once, as a release has).
ACCURACY_MEMBERS = 100_000


def rss_mib() -> float:
    """The process's peak resident set size (VmHWM: unlike ru_maxrss, not inherited from the
    parent that forked it)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the synthetic population ------------------------------------------------------------------


def districts() -> list[str]:
    from badges.insights.peers import postcode_districts

    # Real districts number about 2,900: each area's first 24 (and the lettered ones).
    return [d for d in postcode_districts() if not d[-1].isdigit() or int("".join(c for c in d if c.isdigit())) < 24]


SEED_MEMBERS = """
INSERT INTO members (id, subject_digest)
SELECT md5('bench' || i)::uuid, sha256(('bench' || i)::bytea) FROM generate_series(%(from)s::int, %(to)s::int) i
"""
SEED_CONSENTS = """
INSERT INTO consents (user_id, scope, purpose, granted_at, expires_at)
SELECT md5('bench' || i)::uuid, 'peer_comparison', 'peers', now(), now() + interval '300 days'
FROM generate_series(%(from)s::int, %(to)s::int) i
"""
# Box-Muller normals; income log-normal; savings rate 1 - a log-normal spending ratio.
SEED_INPUTS = """
INSERT INTO peer_inputs (user_id, seq, computed_at, month, savings_rate, salary_minor, spending,
    postcode_district, age_range, dependants, salary_bracket)
SELECT md5('bench' || i)::uuid, 1, now(), date '2026-10-01',
    greatest(-1.0, 1 - exp(-0.1 + 0.25 * z2)), salary,
    jsonb_build_object(
        'rent_mortgage', round(salary * 0.30 * (0.5 + u1)), 'groceries', round(salary * 0.10 * (0.5 + u2)),
        'bills_utilities', round(salary * 0.08 * (0.5 + u3)), 'transport', round(salary * 0.06 * (0.5 + u1)),
        'eating_out', round(salary * 0.05 * u2), 'shopping', round(salary * 0.08 * u3),
        'subscriptions', round(2000 + 3000 * u1), 'gambling', CASE WHEN u3 < 0.1 THEN round(20000 * u2) ELSE 0 END),
    (%(districts)s::text[])[1 + floor(power(u4, 1.6) * %(k)s)::int],
    (ARRAY['18-24','25-34','35-44','45-54','55-64','65+'])[1 + floor(u5 * 6)::int],
    floor(u6 * 4)::int,
    CASE WHEN salary * 12 < 2000000 THEN '<20k' WHEN salary * 12 < 3000000 THEN '20-30k'
         WHEN salary * 12 < 4500000 THEN '30-45k' WHEN salary * 12 < 6000000 THEN '45-60k'
         WHEN salary * 12 < 8000000 THEN '60-80k' WHEN salary * 12 < 10000000 THEN '80-100k' ELSE '100k+' END
FROM (
    SELECT i, u1, u2, u3, u4, u5, u6, z2,
        round(exp(ln(250000) + 0.45 * sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2)))::bigint AS salary
    FROM (
        SELECT i, random() AS u1, random() AS u2, random() AS u3, random() AS u4, random() AS u5,
            random() AS u6, sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z2
        FROM generate_series(%(from)s::int, %(to)s::int) i
    ) draws
) members
"""


def seed(url: str, total: int) -> float:
    """Grow the scratch database's population to `total` members; seconds taken."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as db:
        have = db.execute("SELECT count(*) FROM peer_inputs").fetchone()
        first = int(have[0] if have else 0) + 1
        names = districts()
        for start in range(first, total + 1, 200_000):
            bounds = {"from": start, "to": min(total, start + 199_999)}
            db.execute("SELECT setseed(%s)", (start / (total + 1),))
            db.execute(SEED_MEMBERS, bounds)
            db.execute(SEED_CONSENTS, bounds)
            db.execute(SEED_INPUTS, {**bounds, "districts": names, "k": len(names)})
        db.execute("VACUUM ANALYZE peer_inputs")
        db.execute("VACUUM ANALYZE consents")
    return time.perf_counter() - started


def measure_release(url: str) -> dict[str, Any]:
    """In this (fresh) process: read every consenting member's inputs, compute the release."""
    from psycopg_pool import AsyncConnectionPool

    from badges.activities.peer_stats import compute
    from badges.db.peers import consenting_inputs
    from badges.domain.catalogue import parse_catalogue
    from badges.domain.definitions import BadgeDefinition
    from badges.insights.peers import plan_for

    shipped = parse_catalogue(resources.files("badges").joinpath("catalogue.yaml").read_text(encoding="utf-8"))
    catalogue = [BadgeDefinition.from_spec(badge_id, 1, spec) for badge_id, spec in shipped.badges.items()]
    plan = plan_for(catalogue, epsilon=1.0, min_group_size=20)
    baseline = rss_mib()

    async def read() -> pl.DataFrame:
        async with AsyncConnectionPool(url, min_size=1, max_size=1, open=False) as pool:
            return await consenting_inputs(pool)

    started = time.perf_counter()
    inputs = asyncio.run(read())
    read_s = time.perf_counter() - started
    after_read = rss_mib()
    result = compute(inputs, plan)
    total = time.perf_counter() - started
    levels: dict[str, int] = {}
    for group in result.groups:
        levels[f"{group.dimension}/{group.level}"] = levels.get(f"{group.dimension}/{group.level}", 0) + 1
    return {
        "members": inputs.height,
        "read_s": round(read_s, 2),
        "compute_s": round(total - read_s, 2),
        "total_s": round(total, 2),
        "peak_rss_mib": round(rss_mib(), 1),
        "rss_after_imports_mib": round(baseline, 1),
        "rss_after_read_mib": round(after_read, 1),
        "measurements": len({q.query for q in result.queries}),
        "statistics": len(result.queries),
        "epsilon": round(result.epsilon, 9),
        "groups_by_level": levels,
        "thresholds": {level: round(cut, 1) for level, cut in result.thresholds.items()},
    }


def bench_release(sizes: list[int]) -> list[dict[str, Any]]:
    admin = os.environ.get("BADGES_TEST_ADMIN_URL", DEFAULT_ADMIN_URL)
    name = f"badges_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    found = []
    try:
        from badges.db.migrate import upgrade

        upgrade(url.replace("postgresql://", "postgresql+psycopg://", 1))
        for size in sorted(sizes):
            seeded = seed(url, size)
            run = subprocess.run(
                [sys.executable, "-m", "bench.peers", "--measure", url],
                check=True,
                capture_output=True,
                text=True,
            )
            found.append({"seed_s": round(seeded, 1), **json.loads(run.stdout)})
    finally:
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return found


# --- accuracy ----------------------------------------------------------------------------------


def population(rng: np.random.Generator, members: int) -> pl.DataFrame:
    from badges.insights.peers import INPUT_SCHEMA, SPENDING_CATEGORIES

    salary = np.round(np.exp(np.log(250_000) + 0.45 * rng.standard_normal(members))).astype(np.int64)
    rate = np.maximum(-1.0, 1 - np.exp(-0.1 + 0.25 * rng.standard_normal(members)))
    columns: dict[str, Any] = {
        "savings_rate": rate,
        "salary_minor": salary,
        "postcode_district": ["SW1A"] * members,
        "age_range": ["25-34"] * members,
        "dependants": [0] * members,
        "salary_bracket": ["30-45k"] * members,
    }
    for category in SPENDING_CATEGORIES:
        columns[f"spending:{category}"] = np.zeros(members, dtype=np.int64)
    columns["spending:groceries"] = np.round(salary * 0.10 * (0.5 + rng.random(members))).astype(np.int64)
    columns["spending:rent_mortgage"] = np.round(salary * 0.30 * (0.5 + rng.random(members))).astype(np.int64)
    return pl.DataFrame(columns, schema=INPUT_SCHEMA)


def rank_distance(values: np.ndarray, released: float, alpha: int) -> float:
    """How far, in percentile points, the ranks the released value occupies are from alpha."""
    below = np.searchsorted(values, released, side="left") / len(values) * 100
    at_or_below = np.searchsorted(values, released, side="right") / len(values) * 100
    return float(max(0.0, below - alpha, alpha - at_or_below))


def summary(errors: list[float]) -> dict[str, float]:
    found = np.array(errors)
    return {"p50": round(float(np.quantile(found, 0.5)), 3), "p95": round(float(np.quantile(found, 0.95)), 3)}


def bench_accuracy(repeats: int) -> dict[str, Any]:
    from badges.domain.catalogue import parse_catalogue
    from badges.domain.definitions import BadgeDefinition
    from badges.insights.peers import RATE_UNITS, SALARY_BOUNDS_MINOR, dimension_statistics, peer_frame, plan_for

    shipped = parse_catalogue(resources.files("badges").joinpath("catalogue.yaml").read_text(encoding="utf-8"))
    catalogue = [BadgeDefinition.from_spec(badge_id, 1, spec) for badge_id, spec in shipped.badges.items()]
    plan = plan_for(catalogue, epsilon=1.0, min_group_size=20)
    rng = np.random.default_rng(2026)
    found: dict[str, Any] = {
        "plan": {s.key: round(plan.share(s.weight), 5) for s in plan.statistics("postcode")},
        "sizes": {},
    }
    for size in SIZES:
        groups = max(1, ACCURACY_MEMBERS // size)
        value_errors: dict[str, list[float]] = {}
        rank_errors: dict[str, list[float]] = {}
        covered: dict[str, list[bool]] = {}
        interval: dict[str, list[float]] = {}
        nulls: dict[str, int] = {}
        started = time.perf_counter()
        for _ in range(repeats):
            frame = peer_frame(population(rng, groups * size)).with_columns(
                (pl.int_range(pl.len()) % groups).cast(pl.UInt32).alias("group")
            )
            # (The frame holds the rate in basis points.)
            truth = {
                key: (np.sort(part["savings_rate"].to_numpy() / RATE_UNITS), np.sort(part["salary"].to_numpy()), part)
                for (key,), part in frame.partition_by("group", as_dict=True).items()
            }
            answers, _ = dimension_statistics(frame, plan, "postcode", "group")
            for label, (_, values) in answers.items():
                rates, salaries, part = truth[label]
                for key, value in values.items():
                    if key.endswith(".error") or key.startswith("count"):
                        continue
                    error = values.get(f"{key}.error")
                    if key.startswith("spending."):
                        category = key.split(".")[1]
                        if category not in ("groceries", "rent_mortgage", "cash"):
                            continue
                        if value is None:  # a noisy count of none: no mean, no claim
                            nulls[key] = nulls.get(key, 0) + 1
                            continue
                        miss = abs(value - float(part[f"spending:{category}"].mean() or 0.0))
                        value_errors.setdefault(key, []).append(miss)
                        covered.setdefault(key, []).append(error is not None and miss <= error)
                        interval.setdefault(key, []).append(float("nan") if error is None else error)
                        continue
                    alpha = int(key.rsplit(".p", 1)[1])
                    values_sorted = rates if key.startswith("savingsRate") else salaries
                    if value is None:
                        nulls[key] = nulls.get(key, 0) + 1
                        continue
                    true = float(np.quantile(values_sorted, alpha / 100))
                    if key.startswith("savingsRate"):
                        miss = abs(value - true) * 100  # percentage points
                    else:
                        miss = abs(value - true) / max(true, SALARY_BOUNDS_MINOR[0]) * 100  # per cent
                    distance = rank_distance(values_sorted, value, alpha)
                    value_errors.setdefault(key, []).append(miss)
                    rank_errors.setdefault(key, []).append(distance)
                    covered.setdefault(key, []).append(error is not None and distance <= error)
                    interval.setdefault(key, []).append(float("nan") if error is None else error)
        p95 = value_errors["savingsRate.p95"]
        found["sizes"][str(size)] = {
            "groups": groups * repeats,
            "seconds": round(time.perf_counter() - started, 1),
            "savingsRate.p95": {
                "abs_error_pp": summary(p95),
                "within_2pp": round(float(np.mean(np.array(p95) <= 2.0)), 3),
                "rank_error_points": summary(rank_errors["savingsRate.p95"]),
                "coverage": round(float(np.mean(covered["savingsRate.p95"])), 3),
                "error_p50": round(float(np.nanmedian(interval["savingsRate.p95"])), 3),
            },
            "statistics": {
                key: {
                    "abs_error": summary(value_errors[key]),
                    "unit": "pp" if key.startswith("savings") else "%" if key.startswith("salary") else "minor",
                    **({"rank_error_points": summary(rank_errors[key])} if key in rank_errors else {}),
                    "coverage": round(float(np.mean(covered[key])), 3),
                    "error_p50": round(float(np.nanmedian(interval[key])), 3),
                    "nulls": nulls.get(key, 0),
                }
                for key in sorted(value_errors)
            },
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", choices=("release", "accuracy", "all"), default="all")
    parser.add_argument("--members", default="100000,1000000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process of `release`
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_release(args.measure)))
        return
    result: dict[str, Any] = {"load_average_before": os.getloadavg()}
    if args.scenario in ("accuracy", "all"):
        result["accuracy"] = bench_accuracy(args.repeats)
    if args.scenario in ("release", "all"):
        result["release"] = bench_release([int(n) for n in args.members.split(",")])
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
