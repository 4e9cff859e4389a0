"""The comparative-award step's delivery: how long `award_comparative_badges` takes to hand a
release's awards to N members' badge workflows, and how soon they are recorded. Prints JSON.

A whole stack (bench/stack.py: the Temporal dev server, PostgreSQL, one worker polling both
queues, the API, which seeds the shipped catalogue with top-saver). N members with active
`peer_comparison` consent and no badge workflow yet (as a release finds most of them: each
signal-with-start starts one), one release, and a top-saver award decided for each (kept in
`peer_awards` as the step keeps them). Then the step runs in this process with the heartbeat of
an attempt that had decided (so only delivery is timed), and the benchmark waits for every award
in the `awards` table.

- `send_s`: the step's wall time (signals, the per-page consent and erasure checks, the marks);
  `signals_per_s`: members signalled per second of it.
- `recorded_s`: from the step's start until every member's workflow has recorded the award.
- `cpu_s`: CPU seconds each component spent meanwhile (`bench` is the step itself).

    .venv/bin/python -m bench.peer_awards --members 2000
    .venv/bin/python -m bench.peer_awards --members 2000 --concurrency 16 --batch 200   # as before
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.testing import ActivityEnvironment

from badges.activities.peer_awards import SEND_BATCH, SEND_CONCURRENCY, PeerAwardActivities
from badges.api.members import MemberDirectory
from badges.db.catalogue import load_catalogue
from badges.db.engine import make_engine
from badges.db.keys import KeyStore, MasterKeys
from badges.db.peer_awards import PeerAward, keep_peer_awards
from badges.db.peers import Budget, ReleasedGroup, complete_release, reserve_release
from badges.db.pool import open_pool
from badges.temporal import connect
from bench.stack import running_stack

CREATE_IN_FLIGHT = 32


async def measure(stack: Any, members: int, batch: int, concurrency: int, wait: float) -> dict[str, Any]:
    settings = stack.settings
    engine = make_engine(settings.database_url)
    pool = await open_pool(settings.libpq_url)
    keys = KeyStore(engine, MasterKeys(settings.parsed_master_keys))
    try:
        directory = MemberDirectory(engine, keys, settings.identity_pepper)
        limit = asyncio.Semaphore(CREATE_IN_FLIGHT)

        async def create(index: int) -> uuid.UUID:
            async with limit:
                return await directory.resolve(f"bench-award-{index}-{uuid.uuid4()}")

        began = time.perf_counter()
        ids = await asyncio.gather(*(create(i) for i in range(members)))
        created_s = time.perf_counter() - began
        async with pool.connection() as db, db.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO consents (user_id, scope, purpose, granted_at, expires_at)"
                " VALUES (%s, 'peer_comparison', 'peers', now(), %s)",
                [(member, datetime.now(UTC) + timedelta(days=30)) for member in ids],
            )
        release_id = uuid.uuid4()
        now = datetime.now(UTC)
        reserved = await reserve_release(
            pool, release_id, 0.001, Budget(1.0, 1e9), requested_by="operator", mechanism="bench",
            parameters={"dimensions": ["postcode"]}, now=now,
        )  # fmt: skip
        assert reserved.status == "reserved", reserved
        group = ReleasedGroup("postcode", "district", "SW1A", members, {"savingsRate.p99": 0.4})
        await complete_release(
            pool, release_id, epsilon=0.001, delta=0.0, population=members, parameters={"dimensions": ["postcode"]},
            groups=[group], now=now,
        )  # fmt: skip
        revision, catalogue = await load_catalogue(engine)
        version = next(badge.version for badge in catalogue if badge.badge_id == "top-saver")
        decided = {"percentile": 99.5, "catalogueRevision": revision}
        await keep_peer_awards(
            pool, release_id, [PeerAward(m, "top-saver", version, [f"p99-{release_id}"], decided) for m in ids], now
        )

        temporal = await connect(settings, keys)
        step = PeerAwardActivities(pool, engine, temporal, settings, keys, batch=batch, concurrency=concurrency)
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, heartbeat_details=[members, None, None])  # decided: deliver
        cpu_before = stack.cpu_seconds()
        began = time.perf_counter()
        outcome = await env.run(step.award_comparative_badges, release_id)
        send_s = time.perf_counter() - began
        cpu_after_send = stack.cpu_seconds()
        recorded = 0
        while time.perf_counter() - began < wait:
            async with pool.connection() as db:
                cursor = await db.execute(
                    "SELECT count(*) FROM awards WHERE badge_id = 'top-saver' AND instance = %s",
                    (f"p99-{release_id}",),
                )
                recorded = int((await cursor.fetchone() or (0,))[0])
            if recorded >= members:
                break
            await asyncio.sleep(0.25)
        recorded_s = time.perf_counter() - began
        cpu_after = stack.cpu_seconds()
        return {
            "members": members,
            "batch": batch,
            "concurrency": concurrency,
            "create_members_s": round(created_s, 2),
            "sent": outcome.sent,
            "dropped": outcome.dropped,
            "send_s": round(send_s, 2),
            "signals_per_s": round(outcome.sent / send_s, 1) if send_s else None,
            "recorded": recorded,
            "recorded_s": round(recorded_s, 2) if recorded >= members else None,
            "cpu_s_during_send": {k: round(cpu_after_send[k] - cpu_before[k], 2) for k in cpu_before},
            "cpu_s_until_recorded": {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_before},
        }
    finally:
        await pool.close()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=SEND_BATCH, help="members a page")
    parser.add_argument("--concurrency", type=int, default=SEND_CONCURRENCY, help="signals in flight")
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for every award recorded")
    args = parser.parse_args()
    with running_stack(workers=1, batch_workers=0) as stack:
        figures = asyncio.run(measure(stack, args.members, args.batch, args.concurrency, args.wait))
    print(json.dumps({"peer_awards": figures}, indent=1))


if __name__ == "__main__":
    main()
