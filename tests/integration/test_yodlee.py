"""A Yodlee connection end to end, through the same API and BankSyncWorkflow as Plaid's, against
the local Yodlee: linking needs consent and the FastLink `state`; the whole history arrives once,
sealed; a REFRESH notification (confirmed with Yodlee) brings what is new; a site needing the
login waits for FastLink's edit flow; disconnecting and erasure delete the provider account."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from badges.db.keys import KeyStore
from tests.integration.test_open_banking import access_token, connection, consenting_member, stored, wait_status
from tests.support import dev_token, eventually

pytestmark = pytest.mark.usefixtures("worker")


async def fastlink(bank: str, started: dict[str, str], user: str) -> dict[str, str]:
    """The member's trip through FastLink (the sandbox's stand-in), opened with the link token
    posted, never in a URL: what its callback reports."""
    assert "accessToken" not in started["authUrl"]
    query = urlencode({**dict(parse_qsl(urlsplit(started["authUrl"]).query)), "accessToken": started["linkToken"]})
    async with httpx.AsyncClient(base_url=bank) as http:
        page = await http.post(started["authUrl"], data={"accessToken": started["linkToken"]})
        assert page.status_code == 200, page.text
        redirect = await http.get(f"/_sandbox/fastlink/complete?{query}&user={user}")
    assert redirect.status_code == 302, redirect.text
    return {name: values[0] for name, values in parse_qs(urlsplit(redirect.headers["location"]).query).items()}


async def link(
    client: httpx.AsyncClient, headers: dict[str, str], bank: str, user: str, connection_id: str | None = None
) -> httpx.Response:
    body = {"provider": "yodlee", **({"connectionId": connection_id} if connection_id else {})}
    started = await client.post("/v1/me/bank/link-token", json=body, headers=headers)
    assert started.status_code == 200, started.text
    assert started.json()["linkToken"] and started.json()["authUrl"].startswith(f"{bank}/fastlink")
    returned = await fastlink(bank, started.json(), user)
    return await client.post(
        "/v1/me/bank/connections",
        json={"provider": "yodlee", "publicToken": returned["providerAccountId"], "state": returned["state"]},
        headers=headers,
    )


async def held(bank: str, provider_account_id: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(base_url=bank) as http:
        response = await http.get(f"/_sandbox/providerAccounts/{provider_account_id}")
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


async def item_id(pool: AsyncConnectionPool, connection_id: str) -> str:
    async with pool.connection() as db:
        row = await (
            await db.execute("SELECT item_id FROM bank_connections WHERE id = %s", (connection_id,))
        ).fetchone()
    assert row is not None
    return str(row[0])


async def test_a_yodlee_connection_links_with_its_state_and_syncs_everything_once_sealed(
    client: httpx.AsyncClient, yodlee_bank: str, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    stranger = await dev_token(client, f"{uuid.uuid4()}@example.com")
    refused = await client.post("/v1/me/bank/link-token", json={"provider": "yodlee"}, headers=stranger)
    assert refused.status_code == 403 and refused.json()["type"].endswith("consent-required")

    headers, user_id = await consenting_member(client)
    started = await client.post("/v1/me/bank/link-token", json={"provider": "yodlee"}, headers=headers)
    returned = await fastlink(yodlee_bank, started.json(), "user_gambler")
    body = {"provider": "yodlee", "publicToken": returned["providerAccountId"]}
    missing = await client.post("/v1/me/bank/connections", json=body, headers=headers)
    assert missing.status_code == 422 and missing.json()["type"].endswith("link-state-required")
    other, _ = await consenting_member(client)  # another member cannot claim this provider account
    other_start = await client.post("/v1/me/bank/link-token", json={"provider": "yodlee"}, headers=other)
    other_state = parse_qs(urlsplit(other_start.json()["authUrl"]).query)["state"][0]
    stolen = await client.post("/v1/me/bank/connections", json=body | {"state": other_state}, headers=other)
    assert stolen.status_code == 400 and stolen.json()["type"].endswith("provider-refused")

    linked = await client.post("/v1/me/bank/connections", json=body | {"state": returned["state"]}, headers=headers)
    assert linked.status_code == 201, linked.text
    assert linked.json()["provider"] == "yodlee" and linked.json()["institutionName"] == "Dag Site"
    await wait_status(client, headers, "active")
    truth = await held(yodlee_bank, returned["providerAccountId"])
    assert truth is not None
    expected = {str(t["id"]) for t in truth["transactions"]}
    rows = await stored(pool, user_id)
    assert set(rows) == expected and len(expected) > 300
    page = (await client.get("/v1/me/transactions?limit=500", headers=headers)).json()["transactions"]
    gambling = [t for t in page if t["categoryDetailed"] == "ENTERTAINMENT_CASINOS_AND_GAMBLING"]
    assert gambling and any(t["amountMinor"] < 0 for t in gambling)
    assert sorted(a["subtype"] for a in (await connection(client, headers))["accounts"]) == ["checking", "savings"]
    # The credentials and the descriptions are sealed with the member's key.
    async with pool.connection() as db:
        row = await (
            await db.execute("SELECT access_token FROM bank_connections WHERE id = %s", (linked.json()["id"],))
        ).fetchone()
    assert row is not None and returned["providerAccountId"].encode() not in bytes(row[0])
    credentials = json.loads(await access_token(pool, keys, linked.json()["id"]))
    assert credentials == {"login_name": str(user_id), "provider_account_id": int(returned["providerAccountId"])}


async def test_notifications_wake_the_sync_and_a_login_waits_for_fastlinks_edit_flow(
    client: httpx.AsyncClient, yodlee_bank: str, pool: AsyncConnectionPool
) -> None:
    headers, user_id = await consenting_member(client)
    linked = await link(client, headers, yodlee_bank, "user_saver")
    connection_id = linked.json()["id"]
    await wait_status(client, headers, "active")
    provider_account = await item_id(pool, connection_id)
    callback = f"{client.base_url}/v1/webhooks/yodlee"
    async with httpx.AsyncClient(base_url=yodlee_bank) as bank:
        created = await bank.post(
            f"/_sandbox/providerAccounts/{provider_account}/transactions",
            json={"transactions": [{"description": "STARBUCKS", "amount": "-4.50", "category": "Restaurants"}]},
        )
        new_id = str(created.json()["transactionIds"][0])
        notified = await bank.post(
            f"/_sandbox/providerAccounts/{provider_account}/notify", json={"callbackUrl": callback}
        )
        assert notified.json()["status"] == 200

        async def arrived() -> bool:
            return new_id in await stored(pool, user_id)

        await eventually(arrived)
        # Unsigned notices about no connection of ours, or naming another member, are ignored
        # before anything is asked of Yodlee (a sender could otherwise spend our Yodlee quota).
        calls_before = (await bank.get("/_sandbox/calls")).json()["calls"]
        for field, value in (("loginName", str(uuid.uuid4())), ("providerAccountId", 987654321)):
            forged = notified.json()["event"]
            if field == "loginName":
                forged["event"]["loginName"] = value
            else:
                forged["event"]["data"]["providerAccount"][0]["id"] = value
            answer = await client.post("/v1/webhooks/yodlee", json=forged)
            assert answer.status_code == 200 and answer.json()["status"] == "ignored", answer.text
        assert (await bank.get("/_sandbox/calls")).json()["calls"] == calls_before

        await bank.post(f"/_sandbox/providerAccounts/{provider_account}/require-login", json={})
        await bank.post(f"/_sandbox/providerAccounts/{provider_account}/notify", json={"callbackUrl": callback})
    await wait_status(client, headers, "login_required")
    relinked = await link(client, headers, yodlee_bank, "user_saver", connection_id)
    assert relinked.status_code == 200 and relinked.json()["id"] == connection_id
    await wait_status(client, headers, "active")


async def test_disconnecting_and_erasure_delete_the_provider_account_at_yodlee(
    client: httpx.AsyncClient, yodlee_bank: str, pool: AsyncConnectionPool
) -> None:
    headers, user_id = await consenting_member(client)
    first = await link(client, headers, yodlee_bank, "user_fastfood")
    await wait_status(client, headers, "active")
    first_account = await item_id(pool, first.json()["id"])
    assert (await client.delete(f"/v1/me/bank/connections/{first.json()['id']}", headers=headers)).status_code == 202

    async def deleted() -> bool:
        return await held(yodlee_bank, first_account) is None and not await stored(pool, user_id)

    await eventually(deleted)

    second = await link(client, headers, yodlee_bank, "user_improver")
    await wait_status(client, headers, "active")
    second_account = await item_id(pool, second.json()["id"])
    erased = await client.delete("/v1/me", headers=headers)
    assert erased.status_code == 200, erased.text
    assert await held(yodlee_bank, second_account) is None and not await stored(pool, user_id)
