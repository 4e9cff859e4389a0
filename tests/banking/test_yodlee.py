"""The Yodlee adapter against the Yodlee sandbox, both real, over HTTP: FastLink's link and its
edit flow, the provider account found under the member's login name only, full and incremental
syncs paged by date with our own cursor, token renewal, the refresh status, faults, removal and
REFRESH notifications confirmed with Yodlee."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request

from badges.banking.provider import LinkStart, ProviderError
from badges.banking.sandbox.catalogue import US
from badges.banking.sandbox.personas import PERSONAS
from badges.banking.sandbox.yodlee import create_yodlee_sandbox
from badges.banking.sandbox.yodlee.history import generate
from badges.banking.yodlee import Credentials, SyncCursor, YodleeProvider
from badges.domain.banking import Account, Exchanged, Transaction
from tests.support import free_port, serving

REDIRECT_URI = "http://127.0.0.1:9/bank/yodlee/callback"


@dataclass
class Sandbox:
    url: str
    control: httpx.AsyncClient

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.control.post(path, json=body or {})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def truth(self, provider_account_id: str) -> dict[str, Any]:
        response = await self.control.get(f"/_sandbox/providerAccounts/{provider_account_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def calls(self) -> int:
        return int((await self.control.get("/_sandbox/calls")).json()["calls"])

    async def complete(self, start: LinkStart, user: str) -> str:
        """The member's trip through FastLink, without a browser: opened with the token posted
        (never in the URL), the provider account id its callback reports, after checking the page
        offers the personas."""
        assert start.auth_url is not None and "accessToken" not in start.auth_url
        assert (await self.control.get(start.auth_url)).status_code == 405  # no token by GET
        page = await self.control.post(start.auth_url, data={"accessToken": start.link_token})
        assert page.status_code == 200 and "/_sandbox/fastlink/complete" in page.text, page.text
        query = urlencode({**dict(parse_qsl(urlsplit(start.auth_url).query)), "accessToken": start.link_token})
        response = await self.control.get(f"/_sandbox/fastlink/complete?{query}&user={user}")
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(REDIRECT_URI)
        answer = parse_qs(urlsplit(location).query)
        assert answer["state"] == parse_qs(query)["state"] and answer["status"] == ["SUCCESS"]
        return answer["providerAccountId"][0]


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with serving(create_yodlee_sandbox()) as url, httpx.AsyncClient(base_url=url) as control:
        yield Sandbox(url, control)


def make_provider(url: str, **options: Any) -> YodleeProvider:
    return YodleeProvider(
        api_url=url,
        fastlink_url=f"{url}/fastlink",
        client_id="sandbox-client-id",
        secret="sandbox-secret",
        admin_login_name="sandbox-admin",
        redirect_uri=REDIRECT_URI,
        **options,
    )


@pytest.fixture
def provider(sandbox: Sandbox) -> YodleeProvider:
    return make_provider(sandbox.url)


async def connect(
    provider: YodleeProvider, sandbox: Sandbox, user: str = "user_good", member: str = "member-1"
) -> Exchanged:
    start = await provider.link(member, None)
    assert start.auth_url is not None
    return await provider.exchange(await sandbox.complete(start, user), member)


@dataclass
class Synced:
    added: list[Transaction] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    pages: int = 0
    cursor: str | None = None


async def sync(provider: YodleeProvider, token: str, cursor: str | None, count: int = 500) -> Synced:
    """One batch, driven as `activities/banking.py` drives it: pages until has_more is false."""
    synced = Synced(cursor=cursor)
    while True:
        page = await provider.sync_page(token, synced.cursor, count)
        assert page.access_token is None  # nothing of ours to renew: tokens are fetched per user
        synced.added += page.added
        synced.removed += page.removed
        synced.accounts = page.accounts or synced.accounts
        synced.cursor = page.next_cursor
        synced.pages += 1
        if not page.has_more:
            return synced


def minor(item: dict[str, Any]) -> int:
    amount = int(Decimal(str(item["amount"]["amount"])) * 100)
    return -amount if item["baseType"] == "DEBIT" else amount


async def test_link_opens_fastlink_with_a_user_token_and_state(provider: YodleeProvider, sandbox: Sandbox) -> None:
    start = await provider.link("member-link", "https://example.test/hook")
    assert start.link_token and start.auth_url and start.state
    parts = urlsplit(start.auth_url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{sandbox.url}/fastlink"
    assert query == {"redirect": REDIRECT_URI, "state": start.state}  # the token goes in a POST body
    assert start.expires_at is not None and start.expires_at > datetime.now(UTC) + timedelta(minutes=20)
    again = await provider.link("member-link", None)  # registered already: fine
    assert again.state != start.state


async def test_exchange_finds_the_provider_account_under_the_members_login_only(
    provider: YodleeProvider, sandbox: Sandbox
) -> None:
    exchanged = await connect(provider, sandbox, member="member-own")
    truth = await sandbox.truth(exchanged.item_id)
    assert truth["loginName"] == "member-own"
    assert exchanged.institution_id == "16441" and exchanged.institution_name == "Dag Site"
    assert Credentials.parse(exchanged.access_token) == Credentials("member-own", int(exchanged.item_id))

    await provider.link("member-other", None)
    with pytest.raises(ProviderError) as raised:  # someone else's provider account id
        await provider.exchange(exchanged.item_id, "member-other")
    assert raised.value.kind == "invalid"
    with pytest.raises(ProviderError) as raised:
        await provider.exchange(exchanged.item_id, None)
    assert raised.value.kind == "invalid"

    accounts = await provider.accounts(exchanged.access_token)
    assert [(a.type, a.subtype) for a in accounts] == [("depository", "checking"), ("depository", "savings")]
    assert {a.account_id for a in accounts} == {str(a["id"]) for a in truth["accounts"]}
    assert all(a.currency == "USD" and a.mask and len(a.mask) == 4 and a.balance_minor is not None for a in accounts)


async def test_initial_sync_brings_every_transaction_once_in_our_sign(
    provider: YodleeProvider, sandbox: Sandbox
) -> None:
    exchanged = await connect(provider, sandbox, "user_gambler")
    truth = await sandbox.truth(exchanged.item_id)
    synced = await sync(provider, exchanged.access_token, None, count=100)

    expected = {str(t["id"]): t for t in truth["transactions"]}
    assert synced.pages > len(expected) // 100  # paged: `top` is honoured
    ids = [t.transaction_id for t in synced.added]
    assert len(ids) == len(set(ids)) and set(ids) == set(expected)
    assert len(synced.accounts) == 2 and synced.removed == []
    assert min(t.posted_date for t in synced.added) <= date.today() - timedelta(days=700)  # ~24 months
    for transaction in synced.added:
        item = expected[transaction.transaction_id]
        assert transaction.amount_minor == minor(item)
        assert transaction.account_id == str(item["accountId"])
        assert transaction.pending == (item["status"] == "PENDING")

    wages = [t for t in synced.added if t.category_detailed == "INCOME_WAGES"]
    assert wages and all(t.amount_minor > 0 and t.category_confidence_level == "HIGH" for t in wages)
    rent = [t for t in synced.added if t.category_detailed == "RENT_AND_UTILITIES_RENT"]
    assert rent and all(t.amount_minor < 0 for t in rent)
    bets = [t for t in synced.added if t.merchant_name in {m.name for m in US.bookmakers}]
    assert bets and {t.category_detailed for t in bets} == {"ENTERTAINMENT_CASINOS_AND_GAMBLING"}
    assert all(t.category_confidence_level == "HIGH" for t in bets)
    fast_food = [t for t in synced.added if t.merchant_name in {m.name for m in US.fast_food}]
    assert fast_food and {t.category_detailed for t in fast_food} == {"FOOD_AND_DRINK_FAST_FOOD"}
    savings = [t for t in synced.added if t.category_detailed in ("TRANSFER_OUT_SAVINGS", "TRANSFER_IN_SAVINGS")]
    assert {t.category_detailed for t in savings} == {"TRANSFER_OUT_SAVINGS", "TRANSFER_IN_SAVINGS"}

    cursor = SyncCursor.parse(synced.cursor)
    assert cursor.batch is None and cursor.through == datetime.now(UTC).date()
    assert set(cursor.pending) == {str(t["id"]) for t in truth["transactions"] if t["status"] == "PENDING"}


async def test_incremental_sync_brings_what_is_new_and_drops_pending_that_posted(
    provider: YodleeProvider, sandbox: Sandbox
) -> None:
    exchanged = await connect(provider, sandbox, "user_saver")
    base = f"/_sandbox/providerAccounts/{exchanged.item_id}"
    old = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    held = await sandbox.post(
        f"{base}/transactions",
        {"transactions": [{"description": "STARBUCKS 12", "amount": "-3.10", "pending": True, "date": old,
                           "category": "Restaurants", "labels": ["Coffee Shops"], "merchant_name": "Starbucks"}]},
    )  # fmt: skip
    settled = str(held["transactionIds"][0])
    first = await sync(provider, exchanged.access_token, None)
    assert settled in SyncCursor.parse(first.cursor).pending
    assert next(t for t in first.added if t.transaction_id == settled).category_detailed == "FOOD_AND_DRINK_COFFEE"

    new = await sandbox.post(
        f"{base}/transactions",
        {
            "transactions": [
                {"description": "WHOLEFDS 1234", "amount": "-23.40", "category": "Groceries",
                 "merchant_name": "Whole Foods"},
                {"description": "REFUND AMAZON", "amount": "15.00", "category": "Refunds/Adjustments",
                 "category_type": "INCOME"},
                {"description": "MCDONALD'S 99", "amount": "-8.99", "pending": True, "category": "Restaurants",
                 "labels": ["Fast Food"], "merchant_name": "McDonald's"},
                {"account": "savings", "description": "FROM CHECKING", "amount": "100", "category": "Transfers",
                 "category_type": "TRANSFER"},
            ]
        },
    )  # fmt: skip
    grocery, refund, burger, saved = (str(i) for i in new["transactionIds"])
    posted = str((await sandbox.post(f"{base}/pending/{settled}/post"))["transactionId"])

    second = await sync(provider, exchanged.access_token, first.cursor)
    added = {t.transaction_id: t for t in second.added}
    assert {grocery, refund, burger, saved, posted} <= set(added)
    assert added[grocery].amount_minor == -2340 and added[grocery].category_detailed == "FOOD_AND_DRINK_GROCERIES"
    assert added[grocery].category_confidence_level == "HIGH"
    assert added[refund].amount_minor == 1500 and added[refund].category_detailed is None  # not in the table
    assert added[burger].pending and added[burger].amount_minor == -899
    assert added[saved].category_detailed == "TRANSFER_IN_SAVINGS" and added[saved].category_confidence_level == "HIGH"
    # Yodlee gives the posted transaction a new id: the pending one is removed, the posted one added,
    # even though it is older than the overlap (the window reaches back to the oldest pending day).
    assert second.removed == [settled] and not added[posted].pending and added[posted].amount_minor == -310
    since = SyncCursor.parse(first.cursor).through
    assert since is not None
    assert min(t.posted_date for t in second.added) >= since - timedelta(days=31)
    assert len(second.added) < len(first.added) / 5

    third = await sync(provider, exchanged.access_token, second.cursor)
    assert third.removed == []
    assert burger in SyncCursor.parse(third.cursor).pending and settled not in SyncCursor.parse(third.cursor).pending
    assert min(t.posted_date for t in third.added) >= since - timedelta(days=10)  # the old pending one is gone


async def test_a_transaction_arriving_mid_batch_restarts_it(provider: YodleeProvider, sandbox: Sandbox) -> None:
    exchanged = await connect(provider, sandbox)
    page = await provider.sync_page(exchanged.access_token, None, 50)
    assert page.has_more
    await sandbox.post(
        f"/_sandbox/providerAccounts/{exchanged.item_id}/transactions",
        {"transactions": [{"description": "LATE POSTING", "amount": "-1.00"}]},
    )
    with pytest.raises(ProviderError) as raised:
        while page.has_more:
            page = await provider.sync_page(exchanged.access_token, page.next_cursor, 50)
    assert raised.value.kind == "mutation_during_pagination"
    restarted = await sync(provider, exchanged.access_token, None, count=50)  # from the batch's first cursor
    truth = await sandbox.truth(exchanged.item_id)
    assert sorted(t.transaction_id for t in restarted.added) == sorted(str(t["id"]) for t in truth["transactions"])


async def test_lapsed_tokens_are_renewed(provider: YodleeProvider, sandbox: Sandbox) -> None:
    exchanged = await connect(provider, sandbox)
    page = await provider.sync_page(exchanged.access_token, None, 500)
    await sandbox.post("/_sandbox/tokens/expire")
    rest = await sync(provider, exchanged.access_token, page.next_cursor)
    assert rest.added


async def test_a_site_needing_the_login_needs_the_member_and_fastlinks_edit_flow_restores_it(
    provider: YodleeProvider, sandbox: Sandbox
) -> None:
    exchanged = await connect(provider, sandbox, member="member-relink")
    first = await sync(provider, exchanged.access_token, None)
    await sandbox.post(f"/_sandbox/providerAccounts/{exchanged.item_id}/require-login", {})
    with pytest.raises(ProviderError) as raised:
        await provider.sync_page(exchanged.access_token, first.cursor, 500)
    assert raised.value.kind == "login_required" and not raised.value.retryable

    start = await provider.link("member-relink", None, exchanged.access_token)
    assert start.auth_url is not None
    query = parse_qs(urlsplit(start.auth_url).query)
    assert query["flow"] == ["edit"] and query["providerAccountId"] == [exchanged.item_id]
    renewed = await provider.exchange(await sandbox.complete(start, "user_good"), "member-relink")
    assert renewed.item_id == exchanged.item_id and renewed.access_token == exchanged.access_token
    assert (await sync(provider, renewed.access_token, first.cursor)).added


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limited"), (500, "unavailable"), (503, "unavailable")])
async def test_faults_are_retryable(provider: YodleeProvider, sandbox: Sandbox, status: int, kind: str) -> None:
    exchanged = await connect(provider, sandbox)
    await sandbox.post("/_sandbox/faults", {"status": status, "count": 1})
    with pytest.raises(ProviderError) as raised:
        await provider.sync_page(exchanged.access_token, None, 500)
    assert raised.value.kind == kind and raised.value.retryable
    assert (await sync(provider, exchanged.access_token, None)).added  # the retry goes through


async def test_an_outage_until_cleared_and_the_calls_it_cost(provider: YodleeProvider, sandbox: Sandbox) -> None:
    exchanged = await connect(provider, sandbox)
    await sandbox.post("/_sandbox/faults", {"status": 503, "count": None})
    before = await sandbox.calls()
    for _ in range(3):
        with pytest.raises(ProviderError):
            await provider.sync_page(exchanged.access_token, None, 500)
    assert await sandbox.calls() - before == 3  # one call each: the cached token is not asked again
    await sandbox.control.delete("/_sandbox/faults")
    assert (await sync(provider, exchanged.access_token, None)).added


async def test_a_slow_or_unreachable_yodlee_is_unavailable(sandbox: Sandbox) -> None:
    impatient = make_provider(sandbox.url, timeout=0.2)
    exchanged = await connect(impatient, sandbox)
    await sandbox.post("/_sandbox/faults", {"count": 1, "delay_seconds": 0.6})
    with pytest.raises(ProviderError) as raised:
        await impatient.accounts(exchanged.access_token)
    assert raised.value.kind == "unavailable" and raised.value.code == "TIMEOUT"
    closed = make_provider(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProviderError) as raised:
        await closed.link("member-1", None)
    assert raised.value.kind == "unavailable" and raised.value.retryable


async def test_remove_deletes_the_provider_account_and_is_idempotent(
    provider: YodleeProvider, sandbox: Sandbox
) -> None:
    exchanged = await connect(provider, sandbox)
    await provider.remove(exchanged.access_token)
    assert (await sandbox.control.get(f"/_sandbox/providerAccounts/{exchanged.item_id}")).status_code == 404
    await provider.remove(exchanged.access_token)  # already gone: not an error
    with pytest.raises(ProviderError) as raised:
        await provider.sync_page(exchanged.access_token, None, 500)
    assert raised.value.kind == "gone"


async def test_refresh_notifications_are_believed_as_far_as_yodlee_confirms_them(
    provider: YodleeProvider, sandbox: Sandbox
) -> None:
    exchanged = await connect(provider, sandbox, member="member-notified")
    received: list[bytes] = []

    callback = FastAPI()

    @callback.post("/")
    async def receive(request: Request) -> dict[str, str]:
        received.append(await request.body())
        return {}

    async with serving(callback) as callback_url:
        await sandbox.post(f"/_sandbox/providerAccounts/{exchanged.item_id}/notify", {"callbackUrl": callback_url})
    claims: list[dict[str, str]] = []

    async def before_fetch(**claimed: str) -> None:
        claims.append(claimed)

    notice = await provider.verify_webhook(received[0], {}, before_key_fetch=before_fetch)
    assert notice.item_id == exchanged.item_id and notice.kind == "TRANSACTIONS.SYNC_UPDATES_AVAILABLE"
    # Told which connection and member the notice claims before asking Yodlee anything.
    assert claims == [
        {"claimed_item": exchanged.item_id, "claimed_member": json.loads(received[0])["event"]["loginName"]}
    ]

    await sandbox.post(f"/_sandbox/providerAccounts/{exchanged.item_id}/require-login", {})
    # What Yodlee says now, not what the notification said; the sync finds out the rest.
    assert (await provider.verify_webhook(received[0], {})).details["status"] == "login_required"

    forged = json.loads(received[0])
    forged["event"]["loginName"] = "member-1"  # someone else's provider account under another login
    with pytest.raises(ProviderError) as raised:
        await provider.verify_webhook(json.dumps(forged).encode(), {})
    assert raised.value.kind == "invalid"
    for body in (b"not json", b'{"event": {"info": "DATA_UPDATES.USER_DATA"}}'):
        with pytest.raises(ProviderError) as raised:
            await provider.verify_webhook(body, {})
        assert raised.value.kind == "invalid"


async def test_a_notification_nested_too_deeply_is_refused_not_a_crash(provider: YodleeProvider) -> None:
    # json.loads recursed to the interpreter's limit on it: a RecursionError, a 500 at /v1/webhooks/yodlee.
    with pytest.raises(ProviderError) as raised:
        await provider.verify_webhook(b"[" * 100_000 + b"]" * 100_000, {})
    assert (raised.value.kind, raised.value.code) == ("invalid", "MALFORMED_NOTIFICATION")


def test_histories_are_the_shared_personas_reproducible_in_dollars() -> None:
    day = date(2026, 6, 15)
    one, two = generate("user_spender", "seed", day, 24, 1), generate("user_spender", "seed", day, 24, 1)
    assert [e.id for e in one.entries] == [e.id for e in two.entries]
    assert [a["currency"] for a in one.accounts] == ["USD", "USD"]
    assert min(e.day for e in one.entries) >= day - timedelta(days=730) and max(e.day for e in one.entries) < day
    histories = {name: generate(name, "seed", day, 12, 1) for name in PERSONAS}

    def spent(name: str, label: str) -> Decimal:
        return sum((e.amount for e in histories[name].entries if label in e.labels and e.debit), Decimal(0))

    assert spent("user_gambler", "Gambling") > 500 and spent("user_good", "Gambling") == 0
    assert spent("user_fastfood", "Fast Food") > 5 * spent("user_saver", "Fast Food")
