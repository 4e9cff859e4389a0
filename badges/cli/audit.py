"""`python -m badges.cli.audit`: the audit log's checks and anchor.

- `verify`: recompute the hash chain, check every signed checkpoint and that the chain passes
  through each; print a one-line JSON verdict; exit 1 naming the first bad record or checkpoint.
  `--max-age SECONDS` also fails when the newest checkpoint is older than that (for monitoring).
  `--chain-only` checks the unkeyed chain alone (when the anchoring key is not at hand).
- `checkpoint`: sign and store a checkpoint now (the worker's schedule does it every few minutes).
- `new-anchor-key`: print a fresh anchoring key as `id:base64` for `BADGES_AUDIT_ANCHOR_KEYS`.

Reads `DATABASE_URL`, `BADGES_AUDIT_ANCHOR_KEYS` and `BADGES_AUDIT_CHECKPOINT_DIR` only."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import sys
from datetime import UTC, datetime, timedelta

from badges.config import Settings, parse_audit_anchor_keys
from badges.db.audit_checkpoints import (
    AnchorKeys,
    AuditChainBrokenError,
    CheckpointError,
    CheckpointStore,
    verify_audit_log,
    write_checkpoint,
)
from badges.db.pool import open_pool

DEFAULT_CHECKPOINT_DIR = str(Settings.model_fields["audit_checkpoint_dir"].default)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m badges.cli.audit", description="The audit log's checks and anchor."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="check the chain and every checkpoint")
    verify.add_argument("--chain-only", action="store_true", help="the unkeyed chain alone, no checkpoints")
    verify.add_argument("--max-age", type=float, metavar="SECONDS", help="fail if the newest checkpoint is older")
    commands.add_parser("checkpoint", help="sign and store a checkpoint now")
    commands.add_parser("new-anchor-key", help="print a fresh anchoring key")
    return parser


async def _verify(url: str, store: CheckpointStore | None, keys: AnchorKeys | None, max_age: float | None) -> int:
    pool = await open_pool(url.replace("postgresql+psycopg://", "postgresql://", 1), max_size=2)
    try:
        verdict = await verify_audit_log(
            pool,
            store,
            keys,
            now=datetime.now(UTC),
            max_age=timedelta(seconds=max_age) if max_age is not None else None,
        )
    finally:
        await pool.close()
    print(json.dumps({**verdict.as_json(), "anchored": keys is not None}))
    return 0 if verdict.ok else 1


async def _checkpoint(url: str, store: CheckpointStore, keys: AnchorKeys) -> int:
    pool = await open_pool(url.replace("postgresql+psycopg://", "postgresql://", 1), max_size=2)
    try:
        checkpoint = await write_checkpoint(pool, store, keys, datetime.now(UTC))
    except (CheckpointError, AuditChainBrokenError) as error:
        print(json.dumps({"ok": False, "reason": str(error)}))
        return 1
    finally:
        await pool.close()
    print(
        json.dumps(
            {"ok": True, "checkpoint": checkpoint.seq, "audit_id": checkpoint.audit_id, "records": checkpoint.records}
        )
    )
    return 0


def main(argv: list[str]) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "new-anchor-key":
        key_id = f"anchor-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"
        print(f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}")
        return 0
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    try:
        parsed = parse_audit_anchor_keys(os.environ.get("BADGES_AUDIT_ANCHOR_KEYS", ""))
    except ValueError as error:
        print(str(error), file=sys.stderr)
        return 2
    keys = AnchorKeys(parsed) if parsed else None
    store = CheckpointStore(os.environ.get("BADGES_AUDIT_CHECKPOINT_DIR") or DEFAULT_CHECKPOINT_DIR)
    if arguments.command == "verify" and arguments.chain_only:
        return asyncio.run(_verify(url, None, None, None))
    if keys is None:
        print(
            "BADGES_AUDIT_ANCHOR_KEYS is not set: without it no checkpoint can be checked or signed"
            " (`verify --chain-only` checks the unkeyed chain alone)",
            file=sys.stderr,
        )
        return 2
    if arguments.command == "checkpoint":
        return asyncio.run(_checkpoint(url, store, keys))
    return asyncio.run(_verify(url, store, keys, arguments.max_age))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
