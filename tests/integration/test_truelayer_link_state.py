"""TrueLayer's OAuth `state` through the API: a code is exchanged only with the state handed to the
same member with its authorisation URL, once, within ten minutes (no login CSRF)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.integration.test_open_banking import consenting_member

pytestmark = pytest.mark.usefixtures("worker")


async def authorise(client: httpx.AsyncClient, headers: dict[str, str], bank_url: str, user: str) -> tuple[str, str]:
    """Start linking as the member, authorise at the local TrueLayer as `user`: the code and the
    state the redirect brings back."""
    started = await client.post("/v1/me/bank/link-token", json={"provider": "truelayer"}, headers=headers)
    assert started.status_code == 200, started.text
    expiration = datetime.fromisoformat(started.json()["expiration"])
    assert timedelta(minutes=9) < expiration - datetime.now(UTC) <= timedelta(minutes=10, seconds=5)
    async with httpx.AsyncClient(base_url=bank_url) as bank:
        redirect = await bank.get(f"/_sandbox/authorize?{urlsplit(started.json()['authUrl']).query}&user={user}")
    assert redirect.status_code == 302
    returned = parse_qs(urlsplit(redirect.headers["location"]).query)
    return returned["code"][0], returned["state"][0]


async def connect(client: httpx.AsyncClient, headers: dict[str, str], code: str, state: str | None) -> httpx.Response:
    body = {"provider": "truelayer", "publicToken": code, **({"state": state} if state is not None else {})}
    return await client.post("/v1/me/bank/connections", json=body, headers=headers)


async def no_connections(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    return (await client.get("/v1/me/bank/connections", headers=headers)).json()["connections"] == []


async def test_a_code_with_a_state_started_by_another_member_is_refused(
    client: httpx.AsyncClient, truelayer_bank: str
) -> None:
    victim, _ = await consenting_member(client)
    attacker, _ = await consenting_member(client)
    await client.post("/v1/me/bank/link-token", json={"provider": "truelayer"}, headers=victim)
    # The attacker authorises their own bank and hands their redirect (code and state) to the victim.
    code, state = await authorise(client, attacker, truelayer_bank, "gambler")
    refused = await connect(client, victim, code, state)
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"].endswith("link-state-mismatch")
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await no_connections(client, victim)
    # Without any state, or with one never handed out, it is refused as well.
    code, _ = await authorise(client, attacker, truelayer_bank, "gambler")
    missing = await connect(client, victim, code, None)
    assert missing.status_code == 422 and missing.json()["type"].endswith("link-state-required")
    forged = await connect(client, victim, code, "made-up")
    assert forged.status_code == 400 and forged.json()["type"].endswith("link-state-unknown")
    assert await no_connections(client, victim)


async def test_a_state_works_once(client: httpx.AsyncClient, truelayer_bank: str) -> None:
    headers, _ = await consenting_member(client)
    code, state = await authorise(client, headers, truelayer_bank, "gambler")
    linked = await connect(client, headers, code, state)
    assert linked.status_code == 201, linked.text
    again, _ = await authorise(client, headers, truelayer_bank, "gambler")
    reused = await connect(client, headers, again, state)
    assert reused.status_code == 400 and reused.json()["type"].endswith("link-state-unknown")


async def test_an_expired_state_is_refused(
    client: httpx.AsyncClient, truelayer_bank: str, pool: AsyncConnectionPool
) -> None:
    headers, user_id = await consenting_member(client)
    code, state = await authorise(client, headers, truelayer_bank, "gambler")
    async with pool.connection() as db:  # eleven minutes pass at the bank
        await db.execute(
            "UPDATE bank_link_states SET expires_at = now() - interval '1 minute' WHERE user_id = %s", (user_id,)
        )
    expired = await connect(client, headers, code, state)
    assert expired.status_code == 400 and expired.json()["type"].endswith("link-state-expired")
    assert await no_connections(client, headers)
