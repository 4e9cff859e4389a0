"""`python -m badges.cli.demo`, as `make dev` runs it: demo members made through the public API."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from badges.cli.demo import seed
from tests.sandbox.conftest import CLIENT_ID, SECRET, Sandbox
from tests.support import dev_token, eventually

pytestmark = pytest.mark.usefixtures("worker")


async def test_the_demo_seeds_members_whose_events_count(
    api_url: str, client: httpx.AsyncClient, sandbox_bank: Sandbox
) -> None:
    seeded = await asyncio.to_thread(seed, api_url, sandbox_bank.url, CLIENT_ID, SECRET)
    assert [entry.split(" ")[0] for entry in seeded] == ["alice@example.com", "bob@example.com"]
    bob = await dev_token(client, "bob@example.com")
    alice = await dev_token(client, "alice@example.com")

    async def counted() -> bool:
        mine = {b["badgeId"]: b["progress"] for b in (await client.get("/v1/me/badges", headers=bob)).json()["badges"]}
        hers = {b["badgeId"]: b for b in (await client.get("/v1/me/badges", headers=alice)).json()["badges"]}
        # Bob's check-in and vote came signed by the demo venue; Alice's calculator use from her token.
        return (mine["regular-attendee"], mine["active-voter"]) == (1, 1) and hers["calculator-explorer"]["awarded"]

    await eventually(counted)
    # Run again (each `make dev` does): nothing is seeded twice.
    assert await asyncio.to_thread(seed, api_url, sandbox_bank.url, CLIENT_ID, SECRET) == []
