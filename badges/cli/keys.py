"""`python -m badges.cli.keys`: master-key rotation, without downtime.

The first key in `BADGES_MASTER_KEYS` wraps new data keys; every listed key unwraps. So a new
key must be readable everywhere before anything wraps with it:

1. `python -m badges.cli.keys new-master-key` prints a fresh key as `id:base64`.
2. Add it LAST to `BADGES_MASTER_KEYS` (`old,new`) and restart the API and workers one by one:
   nothing wraps with it yet, every process can now read it.
3. Move it FIRST (`new,old`) and restart them one by one again: new data keys are wrapped with it,
   and processes still on step 2 can read them.
4. `python -m badges.cli.keys rotate` (with `new,old`) re-wraps every data key still under the old
   master key, printing progress as JSON lines; it can be stopped and run again at any time.
5. When `python -m badges.cli.keys status` shows no key under the old master key, drop it from
   `BADGES_MASTER_KEYS` everywhere, then destroy it.

Reads `DATABASE_URL` and `BADGES_MASTER_KEYS` only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import sys

from psycopg_pool import AsyncConnectionPool

from badges.config import parse_master_keys
from badges.db.keys import KeyUnavailableError, MasterKeys, keys_by_master, rewrap_batch
from badges.db.pool import open_pool

BATCH = 500
USAGE = "usage: python -m badges.cli.keys new-master-key | status | rotate"


async def _run(command: str, database_url: str, master_keys: str) -> int:
    master = MasterKeys(parse_master_keys(master_keys))
    pool = await open_pool(database_url.replace("postgresql+psycopg://", "postgresql://", 1), max_size=2)
    try:
        if command == "status":
            counts = await keys_by_master(pool)
            print(json.dumps({"active": master.active_id, "keys_by_master": counts}))
            return 0
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


async def _remaining(pool: AsyncConnectionPool, master: MasterKeys) -> int:
    return sum(count for key, count in (await keys_by_master(pool)).items() if key != master.active_id)


def main(argv: list[str]) -> int:
    if argv == ["new-master-key"]:
        print(f"mk-{secrets.token_hex(4)}:{base64.b64encode(secrets.token_bytes(32)).decode()}")
        return 0
    if argv not in (["status"], ["rotate"]):
        print(USAGE, file=sys.stderr)
        return 2
    database_url, master_keys = os.environ.get("DATABASE_URL"), os.environ.get("BADGES_MASTER_KEYS")
    if not database_url or not master_keys:
        print("DATABASE_URL and BADGES_MASTER_KEYS must be set", file=sys.stderr)
        return 2
    return asyncio.run(_run(argv[0], database_url, master_keys))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
