"""`/transactions/sync` as Plaid runs it: pages, pending → posted, removals, mutation during pagination."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from plaid.exceptions import ApiException
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.transactions_sync_request import TransactionsSyncRequest
from plaid.model.transactions_sync_response import TransactionsSyncResponse

from tests.sandbox.conftest import TODAY, Sandbox, call, plaid_api


async def sync(sandbox: Sandbox, token: str, cursor: str = "", count: int = 500) -> TransactionsSyncResponse:
    request = TransactionsSyncRequest(access_token=token, count=count)
    if cursor:
        request.cursor = cursor
    return await call(sandbox.api.transactions_sync, request)


@dataclass
class Batch:
    added: list[Any] = field(default_factory=list)
    modified: list[Any] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    page_sizes: list[int] = field(default_factory=list)
    cursor: str = ""


async def sync_batch(sandbox: Sandbox, token: str, cursor: str = "", count: int = 500) -> Batch:
    """Pages until `has_more` is false."""
    batch = Batch(cursor=cursor)
    while True:
        page = await sync(sandbox, token, batch.cursor, count)
        batch.added += page.added
        batch.modified += page.modified
        batch.removed += [r.transaction_id for r in page.removed]
        batch.page_sizes.append(len(page.added) + len(page.modified) + len(page.removed))
        batch.cursor = page.next_cursor
        if not page.has_more:
            return batch


def plaid_error(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


async def test_a_full_year_pages_every_transaction_exactly_once(sandbox: Sandbox) -> None:
    # A fixed user: the history is seeded by it, so it surely has pending card spend (about one
    # random history in twenty has none in its last days).
    token = await sandbox.link("user_fastfood", user_id="settling-member")
    batch = await sync_batch(sandbox, token)
    assert batch.page_sizes[0] == 500 and len(batch.page_sizes) > 1
    ids = [t.transaction_id for t in batch.added]
    assert len(ids) == len(set(ids)) == sum(batch.page_sizes)
    assert not batch.modified and not batch.removed
    dates = sorted(t.date for t in batch.added)
    assert dates[0] <= (TODAY - timedelta(days=360)).date() and dates[-1] == TODAY.date()
    assert any(t.pending for t in batch.added), "the last few days' card spend is still pending"
    again = await sync(sandbox, token, batch.cursor)
    assert (again.added, again.modified, again.removed, again.has_more) == ([], [], [], False)
    assert again.next_cursor == batch.cursor


@pytest.mark.parametrize("count", [0, 501])
async def test_count_outside_1_to_500_is_an_invalid_field(sandbox: Sandbox, count: int) -> None:
    """plaid-python checks the bounds itself; with that check off, the sandbox refuses as Plaid does."""
    token = await sandbox.link()
    api = plaid_api(sandbox.url)
    api.api_client.configuration.disabled_client_side_validations = "maximum,minimum"
    with pytest.raises(ApiException) as raised:
        request = TransactionsSyncRequest(access_token=token, count=count, _configuration=api.api_client.configuration)
        await call(api.transactions_sync, request)
    assert raised.value.status == 400
    error = plaid_error(raised.value)
    assert (error["error_type"], error["error_code"]) == ("INVALID_REQUEST", "INVALID_FIELD")


async def test_count_defaults_to_100(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    page = await call(sandbox.api.transactions_sync, TransactionsSyncRequest(access_token=token))
    assert len(page.added) == 100 and page.has_more


async def test_pending_is_removed_and_the_posted_one_points_back_at_it(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    cursor, _ = await sandbox.skip_history(token)
    created = await sandbox.custom(
        "/sandbox/transactions/pending", access_token=token, transactions=[{"amount": 23.4, "description": "DINER 42"}]
    )
    (pending_id,) = created["transaction_ids"]
    batch = await sync_batch(sandbox, token, cursor)
    assert [(t.transaction_id, t.pending, t.amount) for t in batch.added] == [(pending_id, True, 23.4)]
    assert not batch.removed

    posted = await sandbox.custom(
        "/sandbox/transactions/post", access_token=token, transaction_ids=[pending_id], amounts={pending_id: 27.0}
    )
    batch = await sync_batch(sandbox, token, batch.cursor)
    assert batch.removed == [pending_id] and not batch.modified
    (settled,) = batch.added
    assert settled.transaction_id == posted["posted"][pending_id] != pending_id
    assert (settled.pending, settled.pending_transaction_id, settled.amount) == (False, pending_id, 27.0)
    assert settled.name == "DINER 42"


async def test_posting_everything_pending_settles_the_generated_history(sandbox: Sandbox) -> None:
    token = await sandbox.link("user_fastfood", user_id="settling-member")  # seeded: it has pending spend
    cursor, history = await sandbox.skip_history(token)
    pending = {t["transaction_id"] for t in history if t["pending"]}
    assert pending
    posted = (await sandbox.custom("/sandbox/transactions/post", access_token=token))["posted"]
    assert set(posted) == pending
    batch = await sync_batch(sandbox, token, cursor)
    assert set(batch.removed) == pending
    assert {t.pending_transaction_id for t in batch.added} == pending and not any(t.pending for t in batch.added)


async def test_removed_and_modified_transactions(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    cursor, history = await sandbox.skip_history(token)
    gone, changed = history[10]["transaction_id"], history[20]["transaction_id"]
    await sandbox.custom("/sandbox/transactions/remove", access_token=token, transaction_ids=[gone])
    await sandbox.custom("/sandbox/transactions/modify", access_token=token, transaction_id=changed, amount=99.99)
    batch = await sync_batch(sandbox, token, cursor)
    assert not batch.added and batch.removed == [gone]
    assert [(t.transaction_id, t.amount) for t in batch.modified] == [(changed, 99.99)]


async def test_created_transactions_are_added(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    cursor, _ = await sandbox.skip_history(token)
    await sandbox.custom(
        "/sandbox/transactions/create",
        access_token=token,
        transactions=[
            {"date_transacted": "2026-11-24", "date_posted": "2026-11-25", "amount": 5.25, "description": "COFFEE"}
        ],
    )
    added = (await sync_batch(sandbox, token, cursor)).added
    assert [(t.name, t.amount, str(t.date), t.pending) for t in added] == [("COFFEE", 5.25, "2026-11-25", False)]


async def test_created_transactions_may_name_their_account_and_category(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    cursor, _ = await sandbox.skip_history(token)
    accounts = await call(sandbox.api.accounts_get, AccountsGetRequest(access_token=token))
    savings = next(a.account_id for a in accounts.accounts if str(a.subtype) == "savings")
    day = {"date_transacted": "2026-11-20", "date_posted": "2026-11-20"}
    await sandbox.custom(
        "/sandbox/transactions/create",
        access_token=token,
        transactions=[
            {**day, "amount": -600.0, "description": "FROM CHK", "account_id": savings,
             "personal_finance_category": "TRANSFER_IN_SAVINGS"},
        ],
    )  # fmt: skip
    [added] = (await sync_batch(sandbox, token, cursor)).added
    category = added.personal_finance_category
    assert (added.account_id, str(category.primary), str(category.detailed)) == (
        savings,
        "TRANSFER_IN",
        "TRANSFER_IN_SAVINGS",
    )
    for wrong in ({"account_id": "nope"}, {"personal_finance_category": "NOT_A_CATEGORY"}):
        response = await sandbox.http.post(
            "/sandbox/transactions/create",
            json={"access_token": token, "transactions": [{**day, "amount": 1.0, "description": "X", **wrong}]},
        )
        assert response.status_code == 400 and response.json()["error_code"] == "INVALID_FIELD", wrong


async def test_a_change_between_pages_fails_the_batch_and_a_restart_gets_everything_once(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    batch_start, _ = await sandbox.skip_history(token)

    async def create(description: str) -> None:
        transaction = {"date_transacted": "2026-11-25", "date_posted": "2026-11-25", "amount": 1.0}
        await sandbox.custom(
            "/sandbox/transactions/create",
            access_token=token,
            transactions=[transaction | {"description": description}],
        )

    for name in ("A", "B", "C"):
        await create(name)
    first = await sync(sandbox, token, batch_start, count=1)
    assert first.has_more
    await create("D")
    with pytest.raises(ApiException) as raised:
        await sync(sandbox, token, first.next_cursor, count=1)
    error = plaid_error(raised.value)
    assert raised.value.status == 400
    assert (error["error_type"], error["error_code"]) == (
        "TRANSACTIONS_ERROR",
        "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
    )
    restarted = await sync_batch(sandbox, token, batch_start, count=1)
    assert sorted(t.name for t in restarted.added) == ["A", "B", "C", "D"]


async def test_a_nonsense_cursor_is_an_invalid_field(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    with pytest.raises(ApiException) as raised:
        await sync(sandbox, token, "not-a-cursor")
    assert plaid_error(raised.value)["error_code"] == "INVALID_FIELD"
