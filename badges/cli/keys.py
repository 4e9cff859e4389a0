"""`python -m badges.cli.keys`: master-key rotation, without downtime, and the master keys' life.

The first master key wraps new data keys; every listed key unwraps. The keys come from
`BADGES_MASTER_KEYS` (`id:base64,…`) or from the file `BADGES_MASTER_KEYS_FILE` names (the same
items, one a line: a secret store's mount, `.data/master-keys` under `make dev`).

`rotate-due` takes every step that is due (`db/master_keys.py`; the worker's schedule
`keys/rotate-master` runs the same daily): a new master key when the active one is older than
`BADGES_MASTER_KEY_ROTATION_DAYS`, every data key re-wrapped under the active key, keys that wrap
nothing retired, and retired keys destroyed `BADGES_BACKUP_RETENTION_DAYS` after. With a file it
does all of it; with `BADGES_MASTER_KEYS` it re-wraps and retires, and reports what an operator
must do (`rotation_due`, `destruction_due`), exiting 3 while anything is.

By hand, with `BADGES_MASTER_KEYS` (a new key must be readable everywhere before anything wraps
with it):

1. `python -m badges.cli.keys new-master-key` prints a fresh key as `id:base64`.
2. Add it LAST to `BADGES_MASTER_KEYS` (`old,new`) and restart the API and workers one by one:
   nothing wraps with it yet, every process can now read it.
3. Move it FIRST (`new,old`) and restart them one by one again: new data keys are wrapped with it,
   and processes still on step 2 can read them.
4. `python -m badges.cli.keys rotate` (with `new,old`) re-wraps every data key still under the old
   master key, printing progress as JSON lines; it can be stopped and run again at any time.
5. When `python -m badges.cli.keys status` shows no key under the old master key, the old key is
   retired: keep it (backups taken before need it) until `rotate-due` says its destruction is due,
   then drop it from `BADGES_MASTER_KEYS` everywhere and destroy every copy of it.

`rotate-issuer-key` makes a new Open Badges signing key at once (say, one feared exposed): the
old key's private half is destroyed, its public half stays published (`db/credentials.py`). Keys
also rotate by themselves after `BADGES_ISSUER_KEY_ROTATION_DAYS`. Prints the new key's id.

Reads `DATABASE_URL`, the master keys, and for `rotate-due` the two periods.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import sys
from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool

from badges.config import DEFAULT_BACKUP_RETENTION_DAYS, DEFAULT_MASTER_KEY_ROTATION_DAYS, parse_master_keys
from badges.db.credentials import rotate_issuer_key
from badges.db.engine import make_engine
from badges.db.keys import KeyStore, KeyUnavailableError, MasterKeys, keys_by_master, rewrap_batch
from badges.db.master_keys import KeyPolicy, key_states, new_master_key, rotate_due
from badges.db.pool import open_pool

BATCH = 500
USAGE = "usage: python -m badges.cli.keys new-master-key | status | rotate | rotate-due | rotate-issuer-key"
DUE_BY_HAND = 3


async def _rotate_issuer_key(database_url: str, master: MasterKeys) -> int:
    for prefix in ("postgresql://", "postgres://"):  # SQLAlchemy on psycopg 3, as `Settings` reads it
        if database_url.startswith(prefix):
            database_url = "postgresql+psycopg://" + database_url.removeprefix(prefix)
    engine = make_engine(database_url, pool_size=2)
    try:
        kid = await rotate_issuer_key(engine, KeyStore(engine, master), datetime.now(UTC))
    finally:
        await engine.dispose()
    print(json.dumps({"issuerKey": kid}))
    return 0


async def _run(command: str, database_url: str, master: MasterKeys, policy: KeyPolicy) -> int:
    if command == "rotate-issuer-key":
        return await _rotate_issuer_key(database_url, master)
    pool = await open_pool(database_url.replace("postgresql+psycopg://", "postgresql://", 1), max_size=3)
    try:
        if command == "status":
            counts = await keys_by_master(pool)
            states = [_jsonable(state) for state in (await key_states(pool, master)).values()]
            print(json.dumps({"active": master.active_id, "keys_by_master": counts, "master_keys": states}))
            return 0
        if command == "rotate-due":
            report = await rotate_due(pool, master, policy, datetime.now(UTC))
            print(json.dumps(_jsonable(report)))
            if report.error or report.busy:
                return 1
            return DUE_BY_HAND if report.rotation_due or report.destruction_due else 0
        done = 0
        try:
            while True:
                seen, rewrapped = await rewrap_batch(pool, master, BATCH)
                if not seen:
                    break
                done += rewrapped
                print(json.dumps({"rewrapped": done, "remaining": await _remaining(pool, master)}), flush=True)
        except KeyUnavailableError as error:  # a data key under a master key that is not listed
            print(json.dumps({"rewrapped": done, "error": str(error)}))
            return 1
        remaining = await _remaining(pool, master)
        counts = await keys_by_master(pool)
        print(
            json.dumps(
                {"rewrapped": done, "remaining": remaining, "active": master.active_id, "keys_by_master": counts}
            )
        )
        return 0 if remaining == 0 else 1
    finally:
        await pool.close()


def _jsonable(value: object) -> object:
    return json.loads(json.dumps(dataclasses.asdict(value), default=str))  # type: ignore[call-overload]


async def _remaining(pool: AsyncConnectionPool, master: MasterKeys) -> int:
    return sum(count for key, count in (await keys_by_master(pool)).items() if key != master.active_id)


def _days(name: str, default: int) -> timedelta:
    return timedelta(days=int(os.environ.get(name) or default))


def main(argv: list[str]) -> int:
    if argv == ["new-master-key"]:
        key_id, key = new_master_key(datetime.now(UTC))
        print(f"{key_id}:{base64.b64encode(key).decode()}")
        return 0
    if argv not in (["status"], ["rotate"], ["rotate-due"], ["rotate-issuer-key"]):
        print(USAGE, file=sys.stderr)
        return 2
    database_url = os.environ.get("DATABASE_URL")
    listed, ring_file = os.environ.get("BADGES_MASTER_KEYS"), os.environ.get("BADGES_MASTER_KEYS_FILE")
    if not database_url or bool(listed) == bool(ring_file):
        print("DATABASE_URL and one of BADGES_MASTER_KEYS, BADGES_MASTER_KEYS_FILE must be set", file=sys.stderr)
        return 2
    master = MasterKeys.from_file(ring_file) if ring_file else MasterKeys(parse_master_keys(listed or ""))
    policy = KeyPolicy(
        _days("BADGES_MASTER_KEY_ROTATION_DAYS", DEFAULT_MASTER_KEY_ROTATION_DAYS),
        _days("BADGES_BACKUP_RETENTION_DAYS", DEFAULT_BACKUP_RETENTION_DAYS),
    )
    return asyncio.run(_run(argv[0], database_url, master, policy))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
