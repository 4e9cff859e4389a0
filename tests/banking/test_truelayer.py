"""The TrueLayer adapter against the TrueLayer sandbox, both real, over HTTP: linking, the code
exchange, full and incremental syncs with our own cursor, token refresh, the 90-day consent,
faults and removal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from badges.banking.provider import ProviderError
from badges.banking.sandbox.catalogue import UK
from badges.banking.sandbox.truelayer import create_truelayer_sandbox, generate
from badges.banking.sandbox.truelayer.history import USERS
from badges.banking.truelayer import SCOPES, Credentials, SyncCursor, TrueLayerProvider
from badges.domain.banking import Account, Exchanged, Transaction
from tests.support import free_port, serving

REDIRECT_URI = "http://127.0.0.1:9/v1/bank/truelayer/callback"


@dataclass
class Sandbox:
    url: str
    control: httpx.AsyncClient

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.control.post(path, json=body or {})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def truth(self, credentials_id: str) -> dict[str, Any]:
        response = await self.control.get(f"/_sandbox/connections/{credentials_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def authorise(self, auth_url: str, user: str) -> str:
        """The member's trip through the bank, without a browser: the code from the redirect."""
        query = urlsplit(auth_url).query
        if urlsplit(auth_url).path != "/_sandbox/authorize":  # a first link: the dialog's target
            query = f"{query}&user={user}"
        response = await self.control.get(f"/_sandbox/authorize?{query}")
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(REDIRECT_URI)
        answer = parse_qs(urlsplit(location).query)
        assert answer["state"] == parse_qs(query)["state"]
        return answer["code"][0]


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with serving(create_truelayer_sandbox()) as url, httpx.AsyncClient(base_url=url) as control:
        yield Sandbox(url, control)


@pytest.fixture
def provider(sandbox: Sandbox) -> TrueLayerProvider:
    return TrueLayerProvider(
        auth_url=sandbox.url,
        api_url=sandbox.url,
        client_id="sandbox-client-id",
        client_secret="sandbox-secret",
        redirect_uri=REDIRECT_URI,
    )


async def connect(provider: TrueLayerProvider, sandbox: Sandbox, user: str = "john") -> Exchanged:
    start = await provider.link("member-1", None)
    assert start.auth_url is not None
    return await provider.exchange(await sandbox.authorise(start.auth_url, user))


@dataclass
class Synced:
    added: list[Transaction] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    pages: int = 0
    cursor: str | None = None
    refreshed: str | None = None


async def sync(provider: TrueLayerProvider, token: str, cursor: str | None) -> Synced:
    """One batch, driven as `activities/banking.py` drives it: pages until has_more is false,
    refreshed credentials used for the pages after."""
    synced = Synced(cursor=cursor)
    while True:
        page = await provider.sync_page(token, synced.cursor, 500)
        if page.access_token is not None:
            token = synced.refreshed = page.access_token
        synced.added += page.added
        synced.removed += page.removed
        synced.accounts = page.accounts or synced.accounts
        synced.cursor = page.next_cursor
        synced.pages += 1
        if not page.has_more:
            return synced


def minor(item: dict[str, Any]) -> int:
    return int(Decimal(str(item["amount"])) * 100)


async def test_link_builds_truelayers_auth_link(provider: TrueLayerProvider, sandbox: Sandbox) -> None:
    start = await provider.link("member-1", "https://example.test/hook")
    assert start.link_token is None and start.auth_url is not None
    parts = urlsplit(start.auth_url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}" == sandbox.url and parts.path == "/"
    assert query["response_type"] == "code"
    assert query["client_id"] == "sandbox-client-id"
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["scope"] == SCOPES
    assert query["providers"] and query["state"]
    dialog = await sandbox.control.get(start.auth_url)
    assert dialog.status_code == 200 and "/_sandbox/authorize" in dialog.text


async def test_exchange_names_the_credentials_and_provider(provider: TrueLayerProvider, sandbox: Sandbox) -> None:
    exchanged = await connect(provider, sandbox)
    truth = await sandbox.truth(exchanged.item_id)
    assert exchanged.institution_id == "mock" and exchanged.institution_name == "Mock Bank"
    credentials = Credentials.parse(exchanged.access_token)
    assert credentials.refresh_token
    assert credentials.consent_expires_at == datetime.fromisoformat(truth["consent_expires_at"])
    assert credentials.consent_expires_at > datetime.now(UTC) + timedelta(days=89)

    accounts = await provider.accounts(exchanged.access_token)
    assert [(a.type, a.subtype) for a in accounts] == [("depository", "checking"), ("depository", "savings")]
    assert {a.account_id for a in accounts} == {a["account_id"] for a in truth["accounts"]}
    for account in accounts:
        booked = [t for t in truth["booked"] if t["account_id"] == account.account_id]
        assert account.currency == "GBP" and account.mask and len(account.mask) == 4
        assert account.balance_minor is not None
        assert account.balance_minor - sum(minor(t) for t in booked) >= 0  # the opening balance is not negative


async def test_initial_sync_brings_every_transaction_once_in_our_sign(
    provider: TrueLayerProvider, sandbox: Sandbox
) -> None:
    exchanged = await connect(provider, sandbox, "gambler")
    truth = await sandbox.truth(exchanged.item_id)
    synced = await sync(provider, exchanged.access_token, None)

    assert synced.pages == 2  # one per account
    assert len(synced.accounts) == 2 and synced.removed == []
    ids = [t.transaction_id for t in synced.added]
    assert len(ids) == len(set(ids))
    expected = {t["transaction_id"]: t for t in truth["booked"] + truth["pending"]}
    assert set(ids) == set(expected)
    assert min(t.posted_date for t in synced.added) <= date.today() - timedelta(days=700)  # ~24 months
    for transaction in synced.added:
        item = expected[transaction.transaction_id]
        assert transaction.amount_minor == minor(item)  # TrueLayer and we agree: negative is money out
        assert transaction.account_id == item["account_id"]
        assert transaction.pending == (item in truth["pending"])

    by_description = {t.description.split(" ")[0]: t for t in synced.added}
    salary, rent = by_description["ACME"], by_description["OAKWOOD"]
    assert salary.amount_minor > 0 and salary.category_detailed == "INCOME_WAGES"
    assert rent.amount_minor < 0 and rent.category_detailed == "RENT_AND_UTILITIES_RENT"
    bets = [t for t in synced.added if t.merchant_name in ("Bet365", "William Hill", "Paddy Power")]
    assert bets and all(t.category_primary == "ENTERTAINMENT" for t in bets)
    assert all(t.category_detailed == "ENTERTAINMENT_CASINOS_AND_GAMBLING" for t in bets)
    assert all(t.category_confidence_level == "HIGH" for t in bets)
    assert any(t.amount_minor < 0 for t in bets) and any(t.amount_minor > 0 for t in bets)  # stakes and wins
    fast_food = [t for t in synced.added if t.merchant_name in ("McDonald's", "KFC", "Greggs", "Deliveroo")]
    assert fast_food and {t.category_detailed for t in fast_food} == {"FOOD_AND_DRINK_FAST_FOOD"}
    assert all(t.category_primary == "FOOD_AND_DRINK" and t.amount_minor < 0 for t in fast_food)

    cursor = SyncCursor.parse(synced.cursor)
    assert cursor.batch is None and cursor.through is not None
    assert cursor.through - datetime.now(UTC).date() in (timedelta(0), timedelta(days=1))  # around midnight
    assert set(cursor.pending) == {t["transaction_id"] for t in truth["pending"]}


async def test_incremental_sync_brings_what_is_new_and_drops_pending_that_posted(
    provider: TrueLayerProvider, sandbox: Sandbox
) -> None:
    exchanged = await connect(provider, sandbox, "saver")
    held = await sandbox.post(
        f"/_sandbox/connections/{exchanged.item_id}/transactions",
        {"transactions": [{"description": "COSTA COFFEE 12", "amount": "-3.10", "pending": True}]},
    )
    settled = held["transaction_ids"][0]
    first = await sync(provider, exchanged.access_token, None)
    assert first.cursor is not None
    assert settled in SyncCursor.parse(first.cursor).pending
    assert next(t for t in first.added if t.transaction_id == settled).pending

    now = datetime.now(UTC) - timedelta(seconds=5)
    new = await sandbox.post(
        f"/_sandbox/connections/{exchanged.item_id}/transactions",
        {
            "transactions": [
                {"description": "TESCO STORES 1234", "amount": "-23.40", "timestamp": now.isoformat(),
                 "transaction_classification": ["Food & Dining", "Groceries"], "merchant_name": "Tesco"},
                {"description": "REFUND AMAZON", "amount": "15.00", "timestamp": now.isoformat(),
                 "transaction_category": "CREDIT", "transaction_classification": ["Shopping"]},
                {"description": "BURGER KING 99", "amount": "-8.99", "pending": True,
                 "transaction_classification": ["Food & Dining", "Fast Food"]},
                {"account": "savings", "description": "FROM CURRENT ACCOUNT", "amount": "100",
                 "timestamp": now.isoformat(), "transaction_category": "TRANSFER"},
            ]
        },
    )  # fmt: skip
    grocery, refund, burger, saved = new["transaction_ids"]
    posted = (await sandbox.post(f"/_sandbox/connections/{exchanged.item_id}/pending/{settled}/post"))["transaction_id"]

    second = await sync(provider, exchanged.access_token, first.cursor)
    added = {t.transaction_id: t for t in second.added}
    assert {grocery, refund, burger, saved} <= set(added)
    assert added[grocery].amount_minor == -2340 and added[grocery].category_detailed == "FOOD_AND_DRINK_GROCERIES"
    assert added[refund].amount_minor == 1500 and added[refund].category_primary == "GENERAL_MERCHANDISE"
    assert added[burger].pending and added[burger].amount_minor == -899
    assert added[saved].amount_minor == 10000 and added[saved].category_detailed == "TRANSFER_IN_SAVINGS"
    # How exactly the classification mapped is kept: both parts listed, only the top one, the
    # account's kind; TrueLayer gives no merchant category code.
    assert added[grocery].category_confidence_level == "HIGH"
    assert added[refund].category_confidence_level == "MEDIUM"
    assert added[saved].category_confidence_level == "HIGH"
    assert all(t.mcc is None for t in second.added)
    # TrueLayer gives the posted transaction a new id: the pending one is removed, the posted one added.
    assert second.removed == [settled] and not added[posted].pending and added[posted].amount_minor == -310
    # Only the overlap is asked again, not the whole history.
    since = SyncCursor.parse(first.cursor).through
    assert since is not None
    assert min(t.posted_date for t in second.added if not t.pending) >= since - timedelta(days=10)
    assert len(second.added) < len(first.added) / 5

    third = await sync(provider, exchanged.access_token, second.cursor)
    assert third.removed == []  # nothing changed: the overlap comes again, harmlessly (upserts)
    assert {t.transaction_id for t in third.added} <= {t.transaction_id for t in second.added} | {
        t.transaction_id for t in first.added
    }


async def test_tokens_refreshed_mid_sync_come_back_and_work(provider: TrueLayerProvider, sandbox: Sandbox) -> None:
    exchanged = await connect(provider, sandbox)
    token = exchanged.access_token
    page = await provider.sync_page(token, None, 500)
    assert page.has_more and page.access_token is None
    await sandbox.post(f"/_sandbox/connections/{exchanged.item_id}/expire-access-token")

    page = await provider.sync_page(token, page.next_cursor, 500)  # a 401, a refresh, the same request again
    assert not page.has_more and page.access_token is not None
    refreshed = Credentials.parse(page.access_token)
    assert refreshed.access_token != Credentials.parse(token).access_token
    assert refreshed.refresh_token == Credentials.parse(token).refresh_token  # TrueLayer's do not rotate
    assert refreshed.consent_expires_at == Credentials.parse(token).consent_expires_at

    again = await sync(provider, page.access_token, page.next_cursor)
    assert again.refreshed is None  # the new credentials work as they are

    # Credentials we know to have lapsed are refreshed before any request is made.
    lapsed = json.loads(page.access_token) | {"expires_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
    proactive = await provider.sync_page(json.dumps(lapsed), again.cursor, 500)
    assert proactive.access_token is not None
    assert Credentials.parse(proactive.access_token).expires_at > datetime.now(UTC) + timedelta(minutes=30)


async def test_consent_past_ninety_days_needs_the_member_and_reauthentication_restores_it(
    provider: TrueLayerProvider, sandbox: Sandbox
) -> None:
    exchanged = await connect(provider, sandbox)
    first = await sync(provider, exchanged.access_token, None)
    await sandbox.post(f"/_sandbox/connections/{exchanged.item_id}/expire-consent")
    with pytest.raises(ProviderError) as raised:
        await provider.sync_page(exchanged.access_token, first.cursor, 500)
    assert raised.value.kind == "login_required" and not raised.value.retryable

    # Our record of the consent's end is enough on its own: TrueLayer is not even asked.
    past = json.loads(exchanged.access_token) | {"consent_expires_at": "2020-01-01T00:00:00+00:00"}
    with pytest.raises(ProviderError) as raised:
        await provider.sync_page(json.dumps(past), first.cursor, 500)
    assert raised.value.kind == "login_required" and raised.value.code == "CONSENT_EXPIRED"

    start = await provider.link("member-1", None, exchanged.access_token)
    assert start.auth_url is not None
    renewed = await provider.exchange(await sandbox.authorise(start.auth_url, "john"))
    assert renewed.item_id == exchanged.item_id  # the same credentials, consented afresh
    again = await sync(provider, renewed.access_token, first.cursor)
    assert again.added


async def test_a_refused_refresh_needs_the_member(provider: TrueLayerProvider, sandbox: Sandbox) -> None:
    exchanged = await connect(provider, sandbox)
    await sandbox.post(f"/_sandbox/connections/{exchanged.item_id}/revoke-refresh-token")
    await sandbox.post(f"/_sandbox/connections/{exchanged.item_id}/expire-access-token")
    with pytest.raises(ProviderError) as raised:
        await provider.sync_page(exchanged.access_token, None, 500)
    assert raised.value.kind == "login_required" and raised.value.code == "invalid_grant"


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limited"), (500, "unavailable"), (503, "unavailable")])
async def test_faults_are_retryable(provider: TrueLayerProvider, sandbox: Sandbox, status: int, kind: str) -> None:
    exchanged = await connect(provider, sandbox)
    await sandbox.post("/_sandbox/faults", {"status": status, "count": 1})
    with pytest.raises(ProviderError) as raised:
        await provider.sync_page(exchanged.access_token, None, 500)
    assert raised.value.kind == kind and raised.value.retryable
    assert (await sync(provider, exchanged.access_token, None)).added  # the retry goes through


async def test_a_slow_truelayer_is_unavailable(sandbox: Sandbox) -> None:
    impatient = TrueLayerProvider(
        auth_url=sandbox.url,
        api_url=sandbox.url,
        client_id="sandbox-client-id",
        client_secret="sandbox-secret",
        redirect_uri=REDIRECT_URI,
        timeout=0.2,
    )
    exchanged = await connect(impatient, sandbox)
    await sandbox.post("/_sandbox/faults", {"count": 1, "delay_seconds": 0.6})
    with pytest.raises(ProviderError) as raised:
        await impatient.accounts(exchanged.access_token)
    assert raised.value.kind == "unavailable" and raised.value.code == "TIMEOUT" and raised.value.retryable


async def test_an_unreachable_truelayer_is_unavailable() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    provider = TrueLayerProvider(
        auth_url=closed, api_url=closed, client_id="c", client_secret="s", redirect_uri=REDIRECT_URI
    )
    with pytest.raises(ProviderError) as raised:
        await provider.exchange("a-code")
    assert raised.value.kind == "unavailable" and raised.value.retryable


async def test_remove_revokes_and_is_idempotent(provider: TrueLayerProvider, sandbox: Sandbox) -> None:
    exchanged = await connect(provider, sandbox)
    await provider.remove(exchanged.access_token)
    assert (await sandbox.control.get(f"/_sandbox/connections/{exchanged.item_id}")).status_code == 404
    await provider.remove(exchanged.access_token)  # already gone: not an error
    with pytest.raises(ProviderError) as raised:
        await provider.accounts(exchanged.access_token)
    assert raised.value.kind == "login_required"


async def test_codes_are_single_use(provider: TrueLayerProvider, sandbox: Sandbox) -> None:
    start = await provider.link("member-1", None)
    assert start.auth_url is not None
    code = await sandbox.authorise(start.auth_url, "john")
    await provider.exchange(code)
    with pytest.raises(ProviderError) as raised:
        await provider.exchange(code)
    assert raised.value.kind == "invalid" and raised.value.code == "invalid_grant"


async def test_no_webhook_is_trusted(provider: TrueLayerProvider) -> None:
    with pytest.raises(ProviderError) as raised:
        await provider.verify_webhook(b"{}", {})
    assert raised.value.kind == "invalid"


def test_histories_are_reproducible() -> None:
    day = date(2026, 6, 15)
    one, two = generate("spender", "seed", day, 24), generate("spender", "seed", day, 24)
    postings = one.booked + one.pending
    assert [p.transaction_id for p in postings] == [p.transaction_id for p in two.booked + two.pending]
    assert [p.amount for p in postings] == [p.amount for p in two.booked + two.pending]
    assert generate("saver", "seed", day, 24).booked[0].transaction_id != one.booked[0].transaction_id
    assert min(p.timestamp.date() for p in postings) >= day - timedelta(days=730)
    assert max(p.timestamp.date() for p in postings) < day


def test_users_are_the_shared_personas_in_pounds_at_uk_merchants() -> None:
    day = date(2026, 6, 15)
    histories = {user: generate(user, "seed", day, 12) for user in USERS}

    def spent(user: str, sub: str) -> Decimal:
        postings = histories[user].booked + histories[user].pending
        return -sum((p.amount for p in postings if p.classification[1:] == [sub]), Decimal(0))

    for history in histories.values():
        assert [a["currency"] for a in history.accounts] == ["GBP", "GBP"]
        assert {"CREDIT", "STANDING_ORDER", "DIRECT_DEBIT", "PURCHASE", "INTEREST"} <= {
            p.transaction_category for p in history.booked
        }
        names = {p.merchant_name for p in history.booked if p.classification[1:] in (["Gambling"], ["Fast Food"])}
        assert names <= {m.name for m in UK.bookmakers + UK.fast_food}
    assert spent("gambler", "Gambling") > 500 and spent("john", "Gambling") == 0
    assert spent("fastfood", "Fast Food") > 5 * spent("saver", "Fast Food")
    assert generate("user_improver", "seed", day, 12).booked != generate("john", "seed", day, 12).booked
