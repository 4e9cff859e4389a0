"""The provider interface's contract, held by all three adapters against their sandbox banks over
HTTP: linking answers what a client opens, the exchange names an item, accounts and transactions
come in our shapes and sign (money in positive) in the one taxonomy, a whole sync brings every
transaction once and an unchanged bank's next sync removes nothing, outages are retryable
`ProviderError`s, removal is idempotent and ends access, and a forged webhook is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
import pytest

from badges.banking.plaid import PlaidProvider
from badges.banking.provider import BankProvider, ProviderError
from badges.banking.sandbox import SandboxSettings, create_sandbox_app
from badges.banking.sandbox.truelayer import create_truelayer_sandbox
from badges.banking.sandbox.yodlee import create_yodlee_sandbox
from badges.banking.truelayer import TrueLayerProvider
from badges.domain.banking import CATEGORY_PRIMARIES, Exchanged, Transaction, primary_category
from tests.banking.test_yodlee import make_provider
from tests.support import serving

REDIRECT_URI = "http://127.0.0.1:9/callback"
MEMBER = "member-contract"


@dataclass
class Bank:
    """One provider and its sandbox: how a member links (as the saver persona) and how an outage is armed."""

    provider: BankProvider
    http: httpx.AsyncClient
    complete: Callable[[httpx.AsyncClient, str | None, str | None], Awaitable[str]]
    arm_outage: Callable[[httpx.AsyncClient], Awaitable[None]]

    async def link(self) -> Exchanged:
        start = await self.provider.link(MEMBER, None)
        assert start.link_token or start.auth_url
        return await self.provider.exchange(await self.complete(self.http, start.link_token, start.auth_url), MEMBER)


async def plaid_complete(http: httpx.AsyncClient, link_token: str | None, _: str | None) -> str:
    body = {"link_token": link_token, "username": "user_saver"}
    return str((await http.post("/sandbox/link/complete", json=body)).json()["public_token"])


async def plaid_outage(http: httpx.AsyncClient) -> None:
    await http.post("/sandbox/faults", json={"endpoint": "*", "kind": "server_error", "count": 1})


async def truelayer_complete(http: httpx.AsyncClient, _: str | None, auth_url: str | None) -> str:
    assert auth_url is not None
    redirect = await http.get(f"/_sandbox/authorize?{urlsplit(auth_url).query}&user=saver")
    return parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]


async def yodlee_complete(http: httpx.AsyncClient, link_token: str | None, auth_url: str | None) -> str:
    assert auth_url is not None and link_token is not None  # the token is posted, never in the URL
    query = urlencode({**dict(parse_qsl(urlsplit(auth_url).query)), "accessToken": link_token})
    redirect = await http.get(f"/_sandbox/fastlink/complete?{query}&user=user_saver")
    return parse_qs(urlsplit(redirect.headers["location"]).query)["providerAccountId"][0]


async def sandbox_outage(http: httpx.AsyncClient) -> None:
    await http.post("/_sandbox/faults", json={"status": 503, "count": 1})


@pytest.fixture(params=["plaid", "truelayer", "yodlee"])
async def bank(request: pytest.FixtureRequest) -> AsyncIterator[Bank]:
    name = request.param
    if name == "plaid":
        async with serving(create_sandbox_app(SandboxSettings())) as url:
            headers = {"PLAID-CLIENT-ID": "sandbox-client-id", "PLAID-SECRET": "sandbox-secret"}
            async with httpx.AsyncClient(base_url=url, headers=headers) as http:
                provider = PlaidProvider(url, "sandbox-client-id", "sandbox-secret")
                yield Bank(provider, http, plaid_complete, plaid_outage)
    elif name == "truelayer":
        async with serving(create_truelayer_sandbox()) as url, httpx.AsyncClient(base_url=url) as http:
            truelayer = TrueLayerProvider(
                auth_url=url,
                api_url=url,
                client_id="sandbox-client-id",
                client_secret="sandbox-secret",
                redirect_uri=REDIRECT_URI,
            )
            yield Bank(truelayer, http, truelayer_complete, sandbox_outage)
    else:
        async with serving(create_yodlee_sandbox()) as url, httpx.AsyncClient(base_url=url) as http:
            yield Bank(make_provider(url), http, yodlee_complete, sandbox_outage)


async def whole_sync(
    provider: BankProvider, token: str, cursor: str | None
) -> tuple[list[Transaction], list[str], str]:
    added: list[Transaction] = []
    removed: list[str] = []
    while True:
        page = await provider.sync_page(token, cursor, 500)
        token = page.access_token or token
        added += page.added + page.modified
        removed += page.removed
        cursor = page.next_cursor
        if not page.has_more:
            return added, removed, cursor


async def test_every_provider_links_and_syncs_in_our_shapes(bank: Bank) -> None:
    exchanged = await bank.link()
    assert exchanged.access_token and exchanged.item_id
    accounts = await bank.provider.accounts(exchanged.access_token)
    assert {(a.type, a.subtype) for a in accounts} >= {("depository", "checking"), ("depository", "savings")}

    added, removed, cursor = await whole_sync(bank.provider, exchanged.access_token, None)
    ids = [t.transaction_id for t in added]
    assert len(ids) > 100 and len(ids) == len(set(ids)) and removed == []
    assert {t.account_id for t in added} <= {a.account_id for a in accounts}
    for transaction in added:
        assert transaction.amount_minor != 0 and transaction.description
        if transaction.category_detailed is not None:
            assert transaction.category_primary == primary_category(transaction.category_detailed)
            assert transaction.category_primary in CATEGORY_PRIMARIES
    wages = [t for t in added if t.category_detailed == "INCOME_WAGES"]
    assert wages and all(t.amount_minor > 0 for t in wages)  # money in is positive, whoever said it
    saved = [t for t in added if t.category_detailed == "TRANSFER_OUT_SAVINGS"]
    assert saved and all(t.amount_minor < 0 for t in saved)

    again, removed_again, _ = await whole_sync(bank.provider, exchanged.access_token, cursor)
    assert removed_again == [] and {t.transaction_id for t in again} <= set(ids)


async def test_every_provider_reports_an_outage_as_retryable(bank: Bank) -> None:
    exchanged = await bank.link()
    await bank.arm_outage(bank.http)
    with pytest.raises(ProviderError) as raised:
        await bank.provider.sync_page(exchanged.access_token, None, 500)
    assert raised.value.retryable and raised.value.kind == "unavailable"


async def test_every_provider_removes_idempotently_and_access_ends(bank: Bank) -> None:
    exchanged = await bank.link()
    await bank.provider.remove(exchanged.access_token)
    await bank.provider.remove(exchanged.access_token)
    with pytest.raises(ProviderError) as raised:
        await bank.provider.sync_page(exchanged.access_token, None, 500)
    assert not raised.value.retryable


async def test_every_provider_refuses_a_forged_webhook(bank: Bank) -> None:
    with pytest.raises(ProviderError) as raised:
        await bank.provider.verify_webhook(b'{"webhook_code": "SYNC_UPDATES_AVAILABLE"}', {})
    assert raised.value.kind == "invalid"
