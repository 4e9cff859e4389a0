"""`python -m badges.cli.audit verify`: recompute the audit log's hash chain, print a one-line JSON
verdict, exit 1 when a record has been changed."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from badges.db.audit import verify_chain
from badges.db.pool import open_pool


async def _verify(url: str) -> int:
    pool = await open_pool(url.replace("postgresql+psycopg://", "postgresql://", 1))
    try:
        result = await verify_chain(pool)
    finally:
        await pool.close()
    verdict = {
        "ok": result.ok,
        "records_checked": result.records_checked,
        "first_bad_id": result.first_bad_id,
        "reason": result.reason,
    }
    print(json.dumps(verdict))
    return 0 if result.ok else 1


def main(argv: list[str]) -> int:
    if argv != ["verify"]:
        print("usage: python -m badges.cli.audit verify   (reads DATABASE_URL)", file=sys.stderr)
        return 2
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    return asyncio.run(_verify(url))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
