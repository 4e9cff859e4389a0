"""Transaction categories end to end (the sandbox bank over Plaid's API, the real dev server and
PostgreSQL): every synced transaction has a category with its source and confidence; a member's
correction wins, applies to their other transactions from the merchant (earlier and later) and
survives re-syncs; the routes answer 404, 422 and 403 as they should."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from badges.banking.sandbox.catalogue import US
from badges.cli.train_categoriser import correction_parties
from badges.db.banking import corrections_for_training
from badges.db.keys import KeyStore
from badges.domain.categories import SpendingCategory, merchant_label
from badges.insights.training import MemberCorrection
from tests.integration.test_open_banking import consenting_member, fire, linked_member
from tests.sandbox.conftest import Sandbox
from tests.support import dev_token, eventually

pytestmark = pytest.mark.usefixtures("worker")

CATEGORIES = {category.value for category in SpendingCategory}


async def everything(client: httpx.AsyncClient, headers: dict[str, str], **query: str) -> list[dict[str, Any]]:
    """Every page of the member's transactions."""
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        params = {"limit": "500", **query, **({"after": after} if after else {})}
        response = await client.get("/v1/me/transactions", params=params, headers=headers)
        assert response.status_code == 200, response.text
        seen += response.json()["transactions"]
        after = response.json()["nextAfter"]
        if after is None:
            return seen


async def stored_categories(pool: AsyncConnectionPool, user_id: uuid.UUID) -> dict[str, tuple[Any, ...]]:
    """transaction id -> (amount, category, source, confidence) as stored."""
    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT transaction_id, amount_minor, category, category_source, category_confidence"
            " FROM bank_transactions WHERE user_id = %s",
            (user_id,),
        )
        return {row[0]: tuple(row[1:]) for row in await cursor.fetchall()}


async def test_every_synced_transaction_has_a_category_and_bookmakers_are_gambling(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, user_id, _, _ = await linked_member(client, sandbox_bank, pool, keys, "user_gambler")

    rows = await stored_categories(pool, user_id)
    assert len(rows) > 300
    for amount, category, source, confidence in rows.values():
        assert category in CATEGORIES and source in ("provider", "model") and 0 < confidence <= 1, (amount, category)
    listed = await everything(client, headers)
    assert len(listed) == len(rows)
    assert all(t["category"] and t["categorySource"] and t["categoryConfidence"] for t in listed)
    bookmakers = {merchant.name for merchant in US.bookmakers}
    bets = [t for t in listed if t["merchantName"] in bookmakers]
    assert bets and {t["category"] for t in bets} == {"gambling"}
    assert all(t["categorySource"] == "provider" and t["categoryConfidence"] >= 0.9 and t["mcc"] for t in bets)
    assert {t["categoryConfidenceLevel"] for t in bets} == {"VERY_HIGH"}
    # Income is income, and a month and a category filter the list.
    assert any(t["category"] == "income_salary" and t["amountMinor"] > 0 for t in listed)
    month = bets[0]["postedDate"][:7]
    in_month = await everything(client, headers, month=month, category="gambling")
    assert {t["id"] for t in in_month} == {t["id"] for t in bets if t["postedDate"].startswith(month)}


async def test_a_correction_wins_applies_to_the_merchant_and_survives_resyncs(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, user_id, _, token = await linked_member(client, sandbox_bank, pool, keys, "user_saver")
    listed = await everything(client, headers)
    # Coffee chains trade under the fast-food merchant code (5814), but the provider's coffee wins:
    # eating out. This member buys their beans there, and says it is groceries.
    coffee = [t for t in listed if t["merchantName"] in ("Starbucks", "Dunkin'")]
    merchant = max({t["merchantName"] for t in coffee}, key=lambda name: sum(t["merchantName"] == name for t in coffee))
    theirs = sorted((t for t in coffee if t["merchantName"] == merchant), key=lambda t: t["postedDate"])
    assert len(theirs) >= 2 and {t["category"] for t in theirs} == {"eating_out"}
    latest = theirs[-1]
    others = {t["id"]: t["category"] for t in listed if t["merchantName"] != merchant}

    corrected = await client.patch(
        f"/v1/me/transactions/{latest['id']}", json={"category": "groceries"}, headers=headers
    )

    assert corrected.status_code == 200, corrected.text
    body = corrected.json()
    assert (body["category"], body["categorySource"], body["categoryConfidence"]) == ("groceries", "member", 1.0)
    assert body["id"] == latest["id"] and body["categoryDetailed"] == latest["categoryDetailed"]  # the provider's kept
    after = {t["id"]: t for t in await everything(client, headers)}
    # Every transaction from the merchant, the earlier ones too; nobody else's.
    assert {(after[t["id"]]["category"], after[t["id"]]["categorySource"]) for t in theirs} == {("groceries", "member")}
    assert {id_: after[id_]["category"] for id_ in others} == others

    # The bank changes the transaction (a `modified` on the next sync): the member's word stays.
    await sandbox_bank.custom(
        "/sandbox/transactions/modify", access_token=token, transaction_id=latest["transactionId"], amount=4.44
    )
    # A new purchase from the merchant arrives (the bank files it under general merchandise).
    created = await sandbox_bank.custom(
        "/sandbox/transactions/pending",
        access_token=token,
        transactions=[{"amount": 5.25, "description": f"{merchant.upper()} STORE 9", "merchant_name": merchant}],
    )
    [new_id] = created["transaction_ids"]
    await fire(sandbox_bank, token)

    async def synced() -> bool:
        rows = await stored_categories(pool, user_id)
        return rows.get(latest["transactionId"], (0,))[0] == -444 and new_id in rows

    await eventually(synced)
    rows = await stored_categories(pool, user_id)
    assert rows[latest["transactionId"]][1:] == ("groceries", "member", 1.0)
    assert rows[new_id][1:] == ("groceries", "member", 1.0)

    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT category, merchant_key, merchant FROM category_corrections WHERE user_id = %s", (user_id,)
        )
        [(category, merchant_key, sealed)] = await cursor.fetchall()
    assert category == "groceries" and len(bytes(merchant_key)) == 16
    assert merchant.lower().encode()[:5] not in bytes(sealed).lower()  # sealed, not plaintext
    assert (await keys.unseal(bytes(sealed))).decode() == merchant_label("", merchant)

    # The next training run reads it: the label opened in its memory, with the member's amounts.
    [record] = [r for r in await corrections_for_training(pool, keys) if r.user_id == user_id]
    assert record.label == merchant_label("", merchant) and record.category is SpendingCategory.GROCERIES
    assert len(record.amounts_minor) == min(20, len(theirs) + 1) and all(a < 0 for a in record.amounts_minor)
    opened = [MemberCorrection(str(r.user_id), r.label, r.category, r.amounts_minor) for r in [record]]
    parties, summary = correction_parties(opened, min_members=1)
    assert {(p.name, p.category) for p in parties} == {(record.label.upper(), SpendingCategory.GROCERIES)}
    assert correction_parties(opened, min_members=2)[0] == []  # one member alone never enters training
    assert summary["merchantsUsed"] == 1 and summary["members"] == 1


async def test_a_member_category_is_kept_when_the_bank_changes_the_transaction(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    """Even when the change makes it read as another merchant: the member set this one."""
    headers, user_id, _, token = await linked_member(client, sandbox_bank, pool, keys, "user_saver")
    [transfer, *_] = [
        t for t in await everything(client, headers) if t["description"].startswith("ONLINE TRANSFER TO SAV")
    ]
    assert transfer["merchantName"] is None and transfer["category"] == "savings"
    corrected = await client.patch(
        f"/v1/me/transactions/{transfer['id']}", json={"category": "transfer"}, headers=headers
    )
    assert corrected.status_code == 200, corrected.text

    await sandbox_bank.custom(
        "/sandbox/transactions/modify",
        access_token=token,
        transaction_id=transfer["transactionId"],
        name="ONLINE TRANSFER TO SAVINGS BUILDER PLAN",
    )
    await fire(sandbox_bank, token)

    async def modified() -> bool:
        async with pool.connection() as db:
            cursor = await db.execute(
                "SELECT description FROM bank_transactions WHERE user_id = %s AND transaction_id = %s",
                (user_id, transfer["transactionId"]),
            )
            row = await cursor.fetchone()
        return row is not None and (await keys.unseal(bytes(row[0]))).decode().endswith("BUILDER PLAN")

    await eventually(modified)
    assert (await stored_categories(pool, user_id))[transfer["transactionId"]][1:] == ("transfer", "member", 1.0)


async def test_corrections_refuse_other_members_unknown_categories_and_members_without_consent(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, user_id, _, _ = await linked_member(client, sandbox_bank, pool, keys, "user_good")
    [first, *_] = (await client.get("/v1/me/transactions?limit=5", headers=headers)).json()["transactions"]
    path = f"/v1/me/transactions/{first['id']}"

    unknown = await client.patch(path, json={"category": "junk_food"}, headers=headers)
    assert unknown.status_code == 422
    assert [error["field"] for error in unknown.json()["errors"]] == ["body.category"]
    bad_filter = await client.get("/v1/me/transactions", params={"category": "junk_food"}, headers=headers)
    assert bad_filter.status_code == 422 and bad_filter.json()["errors"][0]["field"] == "query.category"
    bad_month = await client.get("/v1/me/transactions", params={"month": "2026-13"}, headers=headers)
    assert bad_month.status_code == 422 and bad_month.json()["errors"][0]["field"] == "query.month"

    stranger, _ = await consenting_member(client)
    assert (await client.patch(path, json={"category": "groceries"}, headers=stranger)).status_code == 404
    for nonsense in ("nothing-we-gave-out", "AAAA", f"{uuid.uuid4()}"):
        missing = await client.patch(f"/v1/me/transactions/{nonsense}", json={"category": "groceries"}, headers=headers)
        assert missing.status_code == 404 and missing.json()["type"].endswith("transaction-not-found")
    assert (await stored_categories(pool, user_id))[first["transactionId"]][2] != "member"  # nothing changed

    unconsented = await dev_token(client, f"{uuid.uuid4()}@example.com")
    refused = await client.patch(path, json={"category": "groceries"}, headers=unconsented)
    assert refused.status_code == 403 and refused.json()["type"].endswith("consent-required")

    # The member's correction is audited; ending open banking deletes it with the bank data.
    assert (await client.patch(path, json={"category": "groceries"}, headers=headers)).status_code == 200
    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT details FROM audit_log WHERE subject = %s AND action = 'write.transaction_category'", (user_id,)
        )
        [(details,)] = await cursor.fetchall()
    assert details["category"] == "groceries" and details["transactions"] >= 1
    revoked = await client.put("/v1/me/consent", json={"scopes": {"open_banking": None}}, headers=headers)
    assert revoked.status_code == 202

    async def forgotten() -> bool:
        async with pool.connection() as db:
            cursor = await db.execute("SELECT count(*) FROM category_corrections WHERE user_id = %s", (user_id,))
            row = await cursor.fetchone()
        return row == (0,)

    await eventually(forgotten)
    assert (await client.patch(path, json={"category": "groceries"}, headers=headers)).status_code == 403
    assert (await client.get("/v1/me/transactions", headers=headers)).status_code == 403


async def test_transactions_stored_before_categories_are_categorised_by_the_next_sync(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, user_id, _, token = await linked_member(client, sandbox_bank, pool, keys, "user_fastfood")
    before = await stored_categories(pool, user_id)
    async with pool.connection() as db:  # as an upgrade finds them: no category, no merchant key
        await db.execute(
            "UPDATE bank_transactions SET category = NULL, category_source = NULL, category_confidence = NULL,"
            " merchant_key = NULL WHERE user_id = %s",
            (user_id,),
        )
    listed = await everything(client, headers)
    assert {t["category"] for t in listed} == {None}
    # A correction of one of them still finds its merchant (opened once, for this request).
    [burger, *_] = [t for t in listed if t["merchantName"] == "Burger King"] or [
        t for t in listed if t["mcc"] == "5814" and t["merchantName"]
    ]
    corrected = await client.patch(f"/v1/me/transactions/{burger['id']}", json={"category": "other"}, headers=headers)
    assert corrected.status_code == 200 and corrected.json()["category"] == "other"

    await fire(sandbox_bank, token)

    async def categorised() -> bool:
        return all(row[1] is not None for row in (await stored_categories(pool, user_id)).values())

    await eventually(categorised)
    after = await stored_categories(pool, user_id)
    same_merchant = {t["transactionId"] for t in listed if t["merchantName"] == burger["merchantName"]}
    assert len(same_merchant) >= 2
    assert {after[id_][1:] for id_ in same_merchant} == {("other", "member", 1.0)}
    assert {id_: row for id_, row in after.items() if id_ not in same_merchant} == {
        id_: row for id_, row in before.items() if id_ not in same_merchant
    }
