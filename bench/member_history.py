"""What a member who consents and links their bank costs Temporal: history events per workflow
(consent, bank sync, behaviour, badges), the dev server's persistence writes and its CPU, per
member. Prints JSON.

N members (`--members`) grant `open_banking` and `behaviour_tracking` (phase `consent`), then
link a sandbox persona each and wait for their first dashboard with figures (phase `link`), as
`bench.backfill` does; the stack settles after each phase. Then every member's workflows'
histories are read and counted by event type.

    .venv/bin/python -m bench.member_history --members 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from typing import Any

import psycopg
from temporalio.client import Client
from temporalio.service import RPCError

from badges.domain.identity import (
    bank_sync_workflow_id,
    behaviour_workflow_id,
    consent_workflow_id,
    user_badges_workflow_id,
)
from bench.backfill import arrive, link_and_watch
from bench.realtime import server_operations
from bench.stack import Stack, running_stack, settle
from bench.sync import api_and_bank

# The persistence operations that write a workflow's state under its history shard's lock.
SHARD_WRITES = ("CreateWorkflowExecution", "UpdateWorkflowExecution", "ConflictResolveWorkflowExecution")


def rises(before: dict[str, float], after: dict[str, float], members: int) -> dict[str, Any]:
    """Per member: every persistence operation that rose, and the shard writes among them."""
    per_member = {
        key.split("/")[-1]: round((value - before.get(key, 0.0)) / members, 2)
        for key, value in after.items()
        if key.startswith("persistence_requests_total/") and value > before.get(key, 0.0)
    }
    writes = sum(value for operation, value in per_member.items() if operation in SHARD_WRITES)
    return {
        "shard_writes": round(writes, 2),
        "persistence": dict(sorted(per_member.items(), key=lambda kv: -kv[1])),
    }


async def phase(stack: Stack, members: int, work: Any) -> tuple[Any, dict[str, Any]]:
    """Run `work` (a coroutine) and settle; what it cost per member."""
    operations = await server_operations(stack)
    cpu = stack.cpu_seconds()
    outcome = await work
    await settle(stack, limit=300)
    after_cpu = stack.cpu_seconds()
    figures = rises(operations, await server_operations(stack), members)
    figures["cpu_ms"] = {
        name: round(1000 * (after_cpu[name] - cpu.get(name, 0.0)) / members, 1) for name in after_cpu if name != "bench"
    }
    return outcome, figures


async def histories(stack: Stack, user_ids: list[Any]) -> dict[str, Any]:
    """Every member's workflows' history events (the current runs), per member, by workflow and
    by event type."""
    client = await Client.connect(stack.temporal_address, namespace=stack.settings.temporal_namespace)
    async with await psycopg.AsyncConnection.connect(stack.settings.libpq_url, autocommit=True) as db:
        cursor = await db.execute("SELECT user_id, id FROM bank_connections WHERE user_id = ANY(%s)", (user_ids,))
        connections = await cursor.fetchall()
    ids = {
        "consent": [consent_workflow_id(user) for user in user_ids],
        "behaviour": [behaviour_workflow_id(user) for user in user_ids],
        "badges": [user_badges_workflow_id(user) for user in user_ids],
        "bank_sync": [bank_sync_workflow_id(connection) for _, connection in connections],
    }
    figures: dict[str, Any] = {}
    for kind, workflow_ids in ids.items():
        types: Counter[str] = Counter()
        found = 0
        for workflow_id in workflow_ids:
            try:
                history = await client.get_workflow_handle(workflow_id).fetch_history()
            except RPCError:
                continue
            found += 1
            types.update(event.WhichOneof("attributes").removesuffix("_event_attributes") for event in history.events)
        figures[kind] = {
            "workflows": found,
            "events_per_member": round(sum(types.values()) / len(user_ids), 2),
            "by_type": {name: round(count / len(user_ids), 2) for name, count in types.most_common()},
        }
    figures["events_per_member"] = round(sum(kind["events_per_member"] for kind in figures.values()), 2)
    return figures


async def measure(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    async with api_and_bank(stack, args.concurrency) as (client, bank):
        await settle(stack, limit=120)
        members, consent = await phase(stack, args.members, arrive(stack, client, args.members, args.concurrency))
        linked, link = await phase(
            stack,
            args.members,
            link_and_watch(stack, client, bank, members, args.concurrency, args.timeout),
        )
    user_ids = [member.user_id for member in members]
    return {
        "members": args.members,
        "ready": linked["ready"],
        "failures": linked["failures"],
        "per_member": {"consent": consent, "link": link},
        "history": await histories(stack, user_ids),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    with running_stack(bank=True) as stack:
        print(json.dumps(asyncio.run(measure(stack, args)), indent=2))


if __name__ == "__main__":
    main()
