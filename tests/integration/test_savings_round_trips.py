"""Savings round trips end to end: a member who saves nothing (the sandbox's spender) moves money
into savings each month and has it back three days later, disguised as a transfer from another
account or as income. Through the real sandbox bank, sync, BehaviourWorkflow and badge workflow:
no savings badge, each round trip once on the review queue (sealed details for the one item asked
for, audited), and a reviewer's decisions change the next evaluation: the ones found not
suspicious count as saved, the confirmed one stays out. Revoking behaviour tracking takes them
off the queue."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from plaid.model.accounts_get_request import AccountsGetRequest
from psycopg_pool import AsyncConnectionPool

from badges.db.keys import KeyStore
from badges.insights.round_trips import ROUND_TRIP_DAYS
from tests.integration.test_behaviour import badge, evaluated_member
from tests.integration.test_open_banking import access_token, fire
from tests.sandbox.conftest import Sandbox, call
from tests.support import dev_token, eventually

pytestmark = pytest.mark.usefixtures("worker")
AMOUNT = 1000.0  # dollars: a sixth of the spender's pay even in a month of three paydays
RETURNS = (  # how the money came back, month by month: (Plaid category, statement line)
    ("TRANSFER_IN_ACCOUNT_TRANSFER", "ONLINE TRANSFER REF #{n}"),
    ("INCOME_OTHER_INCOME", "STRIPE TRANSFER ST-{n}"),
    ("TRANSFER_IN_ACCOUNT_TRANSFER", "ONLINE TRANSFER REF #{n}"),
)


def settled_months(today: date, count: int) -> list[date]:
    """The first days of the last `count` months that savings badges judge today (complete and
    ended at least a week ago), oldest first."""
    month = (today - timedelta(days=ROUND_TRIP_DAYS)).replace(day=1)
    if (month + timedelta(days=32)).replace(day=1) - timedelta(days=1) > today - timedelta(days=ROUND_TRIP_DAYS):
        month = (month - timedelta(days=1)).replace(day=1)  # that month has not ended a week ago
    months = [month]
    while len(months) < count:
        months.insert(0, (months[0] - timedelta(days=1)).replace(day=1))
    return months


def round_trip(month: date, n: int, savings: str) -> list[dict[str, Any]]:
    """Into savings on the 10th (both sides), back out on the 13th (both sides), as the bank shows it."""
    category, line = RETURNS[n]
    out, back = str(month.replace(day=10)), str(month.replace(day=13))
    return [
        {"date_transacted": out, "date_posted": out, "amount": AMOUNT,
         "description": "ONLINE TRANSFER TO SAV XXXXXX7311", "personal_finance_category": "TRANSFER_OUT_SAVINGS"},
        {"date_transacted": out, "date_posted": out, "amount": -AMOUNT, "account_id": savings,
         "description": "ONLINE TRANSFER FROM CHK XXXXXX0042", "personal_finance_category": "TRANSFER_IN_SAVINGS"},
        {"date_transacted": back, "date_posted": back, "amount": -AMOUNT, "description": line.format(n=4411 + n),
         "personal_finance_category": category},
        {"date_transacted": back, "date_posted": back, "amount": AMOUNT, "account_id": savings,
         "description": "ONLINE TRANSFER TO CHK XXXXXX0042", "personal_finance_category": "TRANSFER_OUT_SAVINGS"},
    ]  # fmt: skip


async def stays(check: Callable[[], Awaitable[bool]], seconds: float = 3.0) -> None:
    """`check()` holds now and for `seconds` (what a late write would change has time to land)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        assert await check()
        await asyncio.sleep(0.2)


async def test_savings_that_only_go_round_earn_no_savings_badge_go_to_review_once_and_the_decisions_count(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, _ = await evaluated_member(client, sandbox_bank, "user_spender")
    member = uuid.UUID((await client.get("/v1/me", headers=headers)).json()["userId"])
    admin = await dev_token(client, f"reviewer-{uuid.uuid4()}", ["operator"])
    async with pool.connection() as db:
        cursor = await db.execute("SELECT id FROM bank_connections WHERE user_id = %s", (member,))
        [(connection_id,)] = await cursor.fetchall()
    token = await access_token(pool, keys, str(connection_id))
    accounts = await call(sandbox_bank.api.accounts_get, AccountsGetRequest(access_token=token))
    savings = next(account.account_id for account in accounts.accounts if str(account.subtype) == "savings")
    months = settled_months(datetime.now(UTC).date(), 3)
    trips = [line for n, month in enumerate(months) for line in round_trip(month, n, savings)]
    await sandbox_bank.custom("/sandbox/transactions/create", access_token=token, transactions=trips)
    await fire(sandbox_bank, token)

    async def queue(status: str = "pending") -> list[dict[str, Any]]:
        response = await client.get(f"/v1/admin/review-queue?user={member}&status={status}", headers=admin)
        assert response.status_code == 200, response.text
        return [item for item in response.json() if item["kind"] == "financial"]

    async def found() -> bool:
        return len(await queue()) == 3

    await eventually(found, timeout=60)
    items = await queue()
    assert {item["eventType"] for item in items} == {"savings_round_trip"}
    assert all(item["detail"] is None and "1,000" not in item["reason"] for item in items)  # nothing opened in a list

    async def nothing_saved() -> bool:
        return not any([(await badge(client, headers, b))["awarded"] for b in ("first-thousand", "tenth-saver")])

    await stays(nothing_saved)
    board = (await client.get("/v1/me/dashboard", headers=headers)).json()
    assert board["totalSavedMinor"] == 0
    assert [m["savingsMinor"] for m in board["months"] if m["month"] in {str(month) for month in months}] == [0, 0, 0]

    # One item asked for by id: its details opened for the reviewer, and the read audited as of this member.
    by_month: dict[date, dict[str, Any]] = {}
    for item in items:
        opened = (await client.get(f"/v1/admin/review-queue/{item['reviewId']}", headers=admin)).json()
        detail = opened["detail"]
        assert detail["amountMinor"] == 100_000 and len(detail["transactions"]) == 2
        by_month[date.fromisoformat(detail["firstDay"]).replace(day=1)] = opened
    assert [by_month[month]["detail"]["returnedAs"] for month in months] == ["transfer", "income", "transfer"]
    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT count(*) FROM audit_log WHERE subject = %s AND resource LIKE '/v1/admin/review-queue/%%'",
            (member,),
        )
        assert (await cursor.fetchone()) == (3,)
        cursor = await db.execute(
            "SELECT sealed FROM review_queue WHERE user_id = %s AND kind = 'financial'", (member,)
        )
        assert all(b"amountMinor" not in bytes(row[0]) for row in await cursor.fetchall())  # sealed

    # The middle month's is confirmed; the first and last are found not suspicious.
    decide = lambda month, approve: client.post(  # noqa: E731
        f"/v1/admin/review-queue/{by_month[month]['reviewId']}/decision", json={"approve": approve}, headers=admin
    )
    confirmed = await decide(months[1], False)
    assert confirmed.status_code == 202 and confirmed.json()["status"] == "rejected"
    for month in (months[0], months[2]):
        cleared = await decide(month, True)
        assert cleared.status_code == 202 and cleared.json()["status"] == "approved", cleared.text
    assert (await decide(months[1], True)).status_code == 409

    async def counted_once_cleared() -> bool:
        board = (await client.get("/v1/me/dashboard", headers=headers)).json()
        return bool(board["totalSavedMinor"] == 200_000 and (await badge(client, headers, "first-thousand"))["awarded"])

    await eventually(counted_once_cleared, timeout=60)
    # The confirmed month saved nothing: not three months running.
    assert not (await badge(client, headers, "tenth-saver"))["awarded"]
    # The evaluations the decisions asked for found the same round trips again: still one item each.
    assert len(await queue("approved")) == 2 and len(await queue("rejected")) == 1 and await queue() == []

    # Behaviour tracking revoked: what it derived goes, these items with it.
    revoked = await client.put("/v1/me/consent", json={"scopes": {"behaviour_tracking": None}}, headers=headers)
    assert revoked.status_code == 202

    async def gone() -> bool:
        return [await queue(status) for status in ("pending", "approved", "rejected")] == [[], [], []]

    await eventually(gone)
