"""Open banking end to end: the API, BankSyncWorkflow on the real dev server and the sandbox bank
driven by the real plaid-python client. Linking needs consent; the whole history arrives once;
webhooks (verified) bring pending then posted transactions; login_required waits for a re-link;
provider outages are retried; revoking consent, disconnecting and erasure revoke the item."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import plaid
import pytest
from plaid.model.item_get_request import ItemGetRequest
from psycopg_pool import AsyncConnectionPool

from badges.config import Settings
from badges.db.keys import KeyStore
from tests.processes import start_worker
from tests.sandbox.conftest import Sandbox, call
from tests.support import collect, dev_token, eventually, running_api, sse_events

pytestmark = pytest.mark.usefixtures("worker")


async def consenting_member(client: httpx.AsyncClient) -> tuple[dict[str, str], uuid.UUID]:
    headers = await dev_token(client, f"{uuid.uuid4()}@example.com")
    user_id = uuid.UUID((await client.get("/v1/me", headers=headers)).json()["userId"])
    expires = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    body = {"scopes": {"open_banking": {"purpose": "savings badges", "expiresAt": expires}}}
    assert (await client.put("/v1/me/consent", json=body, headers=headers)).status_code == 202

    async def consented() -> bool:
        scopes = (await client.get("/v1/me/consent", headers=headers)).json()["scopes"]
        return scopes.get("open_banking", {}).get("status") == "active"

    await eventually(consented)
    return headers, user_id


async def link(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    sandbox: Sandbox,
    username: str,
    connection_id: str | None = None,
) -> httpx.Response:
    """What a client does: a link token from us, Link at the bank (the sandbox's stand-in), then
    the public token back to us."""
    body = {"provider": "plaid", **({"connectionId": connection_id} if connection_id else {})}
    started = await client.post("/v1/me/bank/link-token", json=body, headers=headers)
    assert started.status_code == 200, started.text
    finished = await sandbox.custom("/sandbox/link/complete", link_token=started.json()["linkToken"], username=username)
    return await client.post(
        "/v1/me/bank/connections", json={"provider": "plaid", "publicToken": finished["public_token"]}, headers=headers
    )


async def connection(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    [only] = (await client.get("/v1/me/bank/connections", headers=headers)).json()["connections"]
    return only  # type: ignore[no-any-return]


async def linked_member(
    client: httpx.AsyncClient, sandbox: Sandbox, pool: AsyncConnectionPool, keys: KeyStore, username: str
) -> tuple[dict[str, str], uuid.UUID, str, str]:
    """A consenting member whose bank (the sandbox persona `username`) is linked and synced:
    (headers, member id, connection id, the item's access token)."""
    headers, user_id = await consenting_member(client)
    linked = await link(client, headers, sandbox, username)
    assert linked.status_code == 201, linked.text
    await wait_status(client, headers, "active")
    connection_id = linked.json()["id"]
    return headers, user_id, connection_id, await access_token(pool, keys, connection_id)


async def wait_status(client: httpx.AsyncClient, headers: dict[str, str], status: str, timeout: float = 30) -> None:
    async def reached() -> bool:
        return (await connection(client, headers))["status"] == status

    await eventually(reached, timeout)


async def access_token(pool: AsyncConnectionPool, keys: KeyStore, connection_id: str) -> str:
    async with pool.connection() as db:
        row = await (
            await db.execute("SELECT access_token FROM bank_connections WHERE id = %s", (connection_id,))
        ).fetchone()
    assert row is not None
    return (await keys.unseal(bytes(row[0]))).decode()


async def stored(pool: AsyncConnectionPool, user_id: uuid.UUID) -> dict[str, tuple[int, bool, str | None]]:
    """transaction id -> (amount, pending, pending_transaction_id) as stored for the member."""
    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT transaction_id, amount_minor, pending, pending_transaction_id FROM bank_transactions"
            " WHERE user_id = %s",
            (user_id,),
        )
        return {row[0]: (row[1], row[2], row[3]) for row in await cursor.fetchall()}


async def truth(sandbox: Sandbox, token: str) -> set[str]:
    """Every transaction the bank holds for the item now (a fresh full sync, straight to the bank)."""
    _, added = await sandbox.skip_history(token)
    return {item["transaction_id"] for item in added}


async def fire(sandbox: Sandbox, token: str) -> None:
    await sandbox.custom("/sandbox/item/fire_webhook", access_token=token, webhook_code="SYNC_UPDATES_AVAILABLE")


async def test_linking_needs_consent_then_the_whole_history_arrives_once_sealed(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers = await dev_token(client, f"{uuid.uuid4()}@example.com")
    refused = await client.post("/v1/me/bank/link-token", json={"provider": "plaid"}, headers=headers)
    assert refused.status_code == 403 and refused.json()["type"].endswith("consent-required")
    assert (await client.get("/v1/me/transactions", headers=headers)).status_code == 403

    headers, user_id = await consenting_member(client)
    linked = await link(client, headers, sandbox_bank, "user_gambler")
    assert linked.status_code == 201, linked.text
    assert linked.json()["institutionName"]
    await wait_status(client, headers, "active")
    token = await access_token(pool, keys, linked.json()["id"])
    rows = await stored(pool, user_id)
    assert set(rows) == await truth(sandbox_bank, token)
    assert len(rows) > 300  # a year of a real-looking life

    page = (await client.get("/v1/me/transactions?limit=500", headers=headers)).json()
    gambling = [t for t in page["transactions"] if t["categoryDetailed"] == "ENTERTAINMENT_CASINOS_AND_GAMBLING"]
    income = [t for t in page["transactions"] if (t["categoryPrimary"] or "").startswith("INCOME")]
    assert any(t["amountMinor"] < 0 for t in gambling)  # stakes: money out is negative here
    assert income and all(t["amountMinor"] > 0 for t in income)
    assert all(t["description"] for t in page["transactions"])
    [account, *_] = (await connection(client, headers))["accounts"]
    assert account["name"] and account["mask"]
    # Names, merchants and descriptions are sealed with the member's key in the database.
    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT description FROM bank_transactions WHERE user_id = %s AND transaction_id = %s",
            (user_id, gambling[0]["transactionId"]),
        )
        row = await cursor.fetchone()
    assert row is not None and gambling[0]["description"].encode() not in bytes(row[0])

    # The same bank linked again replaces the connection: nothing is held twice.
    again = await link(client, headers, sandbox_bank, "user_gambler")
    assert again.status_code == 200 and again.json()["id"] == linked.json()["id"]
    await wait_status(client, headers, "active")
    new_token = await access_token(pool, keys, linked.json()["id"])

    async def replaced() -> bool:
        return set(await stored(pool, user_id)) == await truth(sandbox_bank, new_token)

    await eventually(replaced)


async def test_webhooks_bring_pending_then_posted_and_a_forged_one_is_refused(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    _, user_id, _, token = await linked_member(client, sandbox_bank, pool, keys, "user_good")

    created = await sandbox_bank.custom(
        "/sandbox/transactions/pending",
        access_token=token,
        transactions=[{"amount": 12.5, "description": "PRET A MANGER 123", "merchant_name": "Pret"}],
    )
    [pending_id] = created["transaction_ids"]
    await fire(sandbox_bank, token)

    async def pending_arrived() -> bool:
        return (await stored(pool, user_id)).get(pending_id) == (-1250, True, None)

    await eventually(pending_arrived)

    posted = await sandbox_bank.custom("/sandbox/transactions/post", access_token=token, transaction_ids=[pending_id])
    posted_id = posted["posted"][pending_id]
    await fire(sandbox_bank, token)
    await fire(sandbox_bank, token)  # delivered twice: changes nothing more

    async def posted_arrived() -> bool:
        rows = await stored(pool, user_id)
        return pending_id not in rows and rows.get(posted_id) == (-1250, False, pending_id)

    await eventually(posted_arrived)
    await asyncio.sleep(1)  # let the duplicate's sync run too
    assert set(await stored(pool, user_id)) == await truth(sandbox_bank, token)

    body = b'{"webhook_type":"TRANSACTIONS","webhook_code":"SYNC_UPDATES_AVAILABLE","item_id":"x"}'
    forged = await client.post("/v1/webhooks/plaid", content=body, headers={"Plaid-Verification": "not.a.jwt"})
    assert forged.status_code == 401
    unsigned = await client.post("/v1/webhooks/plaid", content=body)
    assert unsigned.status_code == 401


async def test_login_required_waits_for_the_member_to_relink(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, user_id = await consenting_member(client)
    linked = await link(client, headers, sandbox_bank, "user_saver")
    connection_id = linked.json()["id"]
    await wait_status(client, headers, "active")
    token = await access_token(pool, keys, connection_id)

    async with client.stream("GET", "/v1/me/stream", headers=headers) as stream:
        events = sse_events(stream)
        await sandbox_bank.custom("/sandbox/item/reset_login", access_token=token)
        await fire(sandbox_bank, token)
        [notice] = await collect(events, 1)
    assert notice.data == {"type": "bank_connection", "connectionId": connection_id, "status": "login_required"}
    await wait_status(client, headers, "login_required")

    # Update mode: the same item comes back and syncing resumes.
    relinked = await link(client, headers, sandbox_bank, "user_saver", connection_id=connection_id)
    assert relinked.status_code == 200 and relinked.json()["id"] == connection_id
    await wait_status(client, headers, "active")
    created = await sandbox_bank.custom(
        "/sandbox/transactions/pending", access_token=token, transactions=[{"amount": 3.2, "description": "COFFEE"}]
    )
    await fire(sandbox_bank, token)

    async def caught_up() -> bool:
        return created["transaction_ids"][0] in await stored(pool, user_id)

    await eventually(caught_up)


@pytest.mark.parametrize(
    ("fault", "count", "timeout"),
    [
        ("server_error", 2, 40),  # retried with backoff inside the activity
        ("rate_limit", 1, 60),  # after the 30 s a 429 asks for
    ],
)
async def test_a_failing_sync_is_retried_until_it_succeeds(
    client: httpx.AsyncClient,
    sandbox_bank: Sandbox,
    pool: AsyncConnectionPool,
    keys: KeyStore,
    fault: str,
    count: int,
    timeout: float,
) -> None:
    headers, user_id, _, token = await linked_member(client, sandbox_bank, pool, keys, "user_spender")
    created = await sandbox_bank.custom(
        "/sandbox/transactions/pending", access_token=token, transactions=[{"amount": 40, "description": "SHOES"}]
    )
    await sandbox_bank.custom(
        "/sandbox/faults", endpoint="/transactions/sync", kind=fault, count=count, access_token=token
    )
    await fire(sandbox_bank, token)

    async def arrived() -> bool:
        return created["transaction_ids"][0] in await stored(pool, user_id)

    await eventually(arrived, timeout=timeout)
    assert (await connection(client, headers))["status"] == "active"


async def item_gone(sandbox: Sandbox, token: str) -> bool:
    try:
        await call(sandbox.api.item_get, ItemGetRequest(access_token=token))
    except plaid.ApiException:
        return True
    return False


async def test_revoking_open_banking_revokes_the_item_and_deletes_the_data(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, user_id, _, token = await linked_member(client, sandbox_bank, pool, keys, "user_fastfood")

    assert (await client.put("/v1/me/consent", json={"scopes": {"open_banking": None}}, headers=headers)).is_success

    async def gone() -> bool:
        return await item_gone(sandbox_bank, token) and not await stored(pool, user_id)

    await eventually(gone)
    assert (await client.get("/v1/me/bank/connections", headers=headers)).json()["connections"] == []
    assert (await client.get("/v1/me/transactions", headers=headers)).status_code == 403


async def test_disconnecting_one_connection_revokes_it_at_the_bank(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, user_id, connection_id, token = await linked_member(client, sandbox_bank, pool, keys, "user_improver")

    response = await client.delete(f"/v1/me/bank/connections/{connection_id}", headers=headers)
    assert response.status_code == 202
    assert (await client.delete(f"/v1/me/bank/connections/{uuid.uuid4()}", headers=headers)).status_code == 404

    async def gone() -> bool:
        return await item_gone(sandbox_bank, token) and not await stored(pool, user_id)

    await eventually(gone)


async def test_erasure_revokes_bank_items_before_the_key_goes(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, user_id, _, token = await linked_member(client, sandbox_bank, pool, keys, "user_irregular_income")

    erased = await client.delete("/v1/me", headers=headers)
    assert erased.status_code == 200, erased.text
    assert await item_gone(sandbox_bank, token)
    assert not await stored(pool, user_id)
    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT details FROM audit_log WHERE resource = %s AND action = 'erasure.bank_connections_removed'",
            (f"erasure/{erased.json()['reference']}",),
        )
        assert await cursor.fetchall() == [({"connections": 1},)]


async def test_a_worker_killed_mid_sync_leaves_no_duplicate_and_no_gap(
    system_settings: Settings, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    """The sync runs on a worker process of its own, which dies (SIGKILL) between pages of the
    initial batch; a new worker repeats the batch from the stored cursor."""
    settings = system_settings.model_copy(update={"task_queue": f"tq-{uuid.uuid4()}"})
    worker = start_worker(settings)
    try:
        async with running_api(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            headers, user_id = await consenting_member(client)
            # Slow pages: the batch is still being read when the worker dies.
            await sandbox_bank.custom(
                "/sandbox/faults", endpoint="/transactions/sync", kind="slow", delay_ms=800, count=None
            )
            linked = await link(client, headers, sandbox_bank, "user_gambler")
            assert linked.status_code == 201
            await asyncio.sleep(1.2)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            assert not await stored(pool, user_id)  # nothing of a batch is stored before it is whole
            await sandbox_bank.http.delete("/sandbox/faults")
            worker = start_worker(settings)
            await wait_status(client, headers, "active", timeout=120)
            token = await access_token(pool, keys, linked.json()["id"])
            assert set(await stored(pool, user_id)) == await truth(sandbox_bank, token)
    finally:
        await sandbox_bank.http.delete("/sandbox/faults")
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


async def test_a_truelayer_connection_syncs_through_the_same_workflow(
    client: httpx.AsyncClient, truelayer_bank: str, pool: AsyncConnectionPool
) -> None:
    headers, user_id = await consenting_member(client)
    started = await client.post("/v1/me/bank/link-token", json={"provider": "truelayer"}, headers=headers)
    assert started.status_code == 200 and started.json()["linkToken"] is None
    auth_url = started.json()["authUrl"]
    assert auth_url.startswith(truelayer_bank) and "response_type=code" in auth_url
    # The member authorises at the bank, which redirects back with a code (no browser here).
    async with httpx.AsyncClient(base_url=truelayer_bank) as bank:
        redirect = await bank.get(f"/_sandbox/authorize?{urlsplit(auth_url).query}&user=gambler")
    assert redirect.status_code == 302
    returned = parse_qs(urlsplit(redirect.headers["location"]).query)
    code, state = returned["code"][0], returned["state"][0]

    linked = await client.post(
        "/v1/me/bank/connections",
        json={"provider": "truelayer", "publicToken": code, "state": state},
        headers=headers,
    )
    assert linked.status_code == 201, linked.text
    await wait_status(client, headers, "active")
    async with pool.connection() as db:
        cursor = await db.execute("SELECT item_id FROM bank_connections WHERE id = %s", (linked.json()["id"],))
        row = await cursor.fetchone()
    assert row is not None
    async with httpx.AsyncClient(base_url=truelayer_bank) as bank:
        held = (await bank.get(f"/_sandbox/connections/{row[0]}")).json()
    # Everything the bank holds, once: booked and pending transactions alike.
    expected = {t["transaction_id"] for t in held["booked"] + held["pending"]}
    assert set(await stored(pool, user_id)) == expected and len(expected) > 300
    page = (await client.get("/v1/me/transactions?limit=500", headers=headers)).json()["transactions"]
    assert any(t["amountMinor"] < 0 for t in page) and any(t["amountMinor"] > 0 for t in page)


async def test_data_changing_mid_batch_restarts_the_batch_and_loses_nothing(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, user_id = await consenting_member(client)
    # Each page is answered 1.5 s after it is asked for, and computed then: the first page is
    # computed ~1.6 s after linking, the second ~3.1 s. A transaction created at 2.3 s lands between
    # them: the second page fails with TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION. Had the batch
    # not started again, the new transaction could not be in it (no webhook follows).
    await sandbox_bank.custom("/sandbox/faults", endpoint="/transactions/sync", kind="slow", delay_ms=1500, count=None)
    try:
        linked = await link(client, headers, sandbox_bank, "user_spender")
        token = await access_token(pool, keys, linked.json()["id"])
        await asyncio.sleep(2.3)
        created = await sandbox_bank.custom(
            "/sandbox/transactions/pending", access_token=token, transactions=[{"amount": 9.99, "description": "NEW"}]
        )
    finally:
        await sandbox_bank.http.delete("/sandbox/faults")
    await wait_status(client, headers, "active")
    rows = await stored(pool, user_id)
    assert created["transaction_ids"][0] in rows  # the batch started again and took it in
    assert set(rows) == await truth(sandbox_bank, token)


async def test_relinking_while_a_sync_runs_keeps_the_new_connection(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, user_id = await consenting_member(client)
    await sandbox_bank.custom("/sandbox/faults", endpoint="/transactions/sync", kind="slow", delay_ms=1500, count=None)
    try:
        first = await link(client, headers, sandbox_bank, "user_gambler")
        old_token = await access_token(pool, keys, first.json()["id"])
        await asyncio.sleep(2.0)  # the first item's initial sync is between pages
        again = await link(client, headers, sandbox_bank, "user_gambler")
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    finally:
        await sandbox_bank.http.delete("/sandbox/faults")
    assert await item_gone(sandbox_bank, old_token)  # the replaced item is revoked at the bank
    await wait_status(client, headers, "active")
    new_token = await access_token(pool, keys, first.json()["id"])
    assert new_token != old_token and not await item_gone(sandbox_bank, new_token)
    assert set(await stored(pool, user_id)) == await truth(sandbox_bank, new_token)


async def test_a_bank_refusing_to_revoke_does_not_keep_the_data(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, user_id, _, token = await linked_member(client, sandbox_bank, pool, keys, "user_good")
    await sandbox_bank.custom(
        "/sandbox/faults", endpoint="/item/remove", kind="item_login_required", count=None, access_token=token
    )
    try:
        revoked = await client.put("/v1/me/consent", json={"scopes": {"open_banking": None}}, headers=headers)
        assert revoked.status_code == 202

        async def deleted() -> bool:
            return (
                not await stored(pool, user_id)
                and not (await client.get("/v1/me/bank/connections", headers=headers)).json()["connections"]
            )

        await eventually(deleted)
    finally:
        await sandbox_bank.http.delete("/sandbox/faults")
    scopes = (await client.get("/v1/me/consent", headers=headers)).json()["scopes"]
    assert scopes["open_banking"]["status"] == "revoked"
    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT details FROM audit_log WHERE subject = %s AND action = 'bank.revoke_failed'", (user_id,)
        )
        assert [row[0]["code"] for row in await cursor.fetchall()] == ["ITEM_LOGIN_REQUIRED"]


async def test_transactions_page_through_everything_once(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool
) -> None:
    headers, user_id = await consenting_member(client)
    await link(client, headers, sandbox_bank, "user_saver")
    await wait_status(client, headers, "active")
    seen: list[str] = []
    after = None
    while True:
        query = {"limit": "97", **({"after": after} if after else {})}
        page = (await client.get("/v1/me/transactions", params=query, headers=headers)).json()
        seen += [t["transactionId"] for t in page["transactions"]]
        dates = [t["postedDate"] for t in page["transactions"]]
        assert dates == sorted(dates, reverse=True)
        after = page["nextAfter"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) and set(seen) == set(await stored(pool, user_id))
    bad = await client.get("/v1/me/transactions", params={"after": "2024-13-45/x"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.after"
