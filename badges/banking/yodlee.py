"""The Yodlee adapter: Envestnet Yodlee's API v1.1 over httpx. Tokens are client credentials per
user (`loginName`), fetched as needed and kept until they near their 30 minutes; the member links
through FastLink, whose callback names the new provider account; a provider account's refresh
status says when the member must log in again. Yodlee has no transactions cursor, so the cursor is
ours (`SyncCursor`): transactions are paged by date window and `skip`/`top`, each account's count
checked at its last page. Amounts, categories and errors are normalised here, at the edge.

What we store as the connection's "access token" is `Credentials` as JSON (sealed by the caller):
the member's Yodlee login name and the provider account. Nothing in it is a secret by itself (a
token needs our client secret too), but it is held like every provider's credentials.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from badges.banking.http import raise_for_error, send
from badges.banking.provider import BeforeKeyFetch, FailureKind, ProviderError
from badges.domain.banking import (
    Account,
    Exchanged,
    LinkStart,
    SyncPage,
    Transaction,
    WebhookNotice,
    primary_category,
    to_minor,
)
from badges.domain.json_input import parse_json

API_VERSION = "1.1"
REQUEST_TIMEOUT_SECONDS = 30.0
HISTORY_DAYS = 730  # Yodlee keeps (and serves on the first sync) up to 24 months
# Banks post late and rewrite recent days, so each sync asks again for this many days before the
# day through which the last one was complete; the store upserts by transaction id.
OVERLAP_DAYS = 10
MAX_TOP = 500  # Yodlee's largest page of transactions
# A cached token is used only while this much of its life is left.
TOKEN_MARGIN = timedelta(seconds=60)
# The refresh's `additionalStatus` values after which nothing updates until the member logs in
# again in FastLink (edit flow), and those meaning a refresh is still running.
LOGIN_STATUSES = frozenset(
    {
        "INCORRECT_CREDENTIALS",
        "ADDL_AUTHENTICATION_REQUIRED",
        "CONSENT_EXPIRED",
        "USER_INPUT_REQUIRED",
        "ACCOUNT_LOCKED",
    }
)
IN_PROGRESS_STATUSES = frozenset({"LOGIN_IN_PROGRESS", "DATA_RETRIEVAL_IN_PROGRESS", "ACCT_SUMMARY_RECEIVED"})


@dataclass(frozen=True)
class Credentials:
    """What we hold for one Yodlee connection (the `access_token` of our interface, as JSON)."""

    login_name: str
    provider_account_id: int

    @classmethod
    def parse(cls, text: str) -> Credentials:
        try:
            raw = json.loads(text)
            return cls(login_name=str(raw["login_name"]), provider_account_id=int(raw["provider_account_id"]))
        except (ValueError, KeyError, TypeError) as error:
            raise ProviderError("invalid", "MALFORMED_CREDENTIALS", "not Yodlee credentials") from error

    def dump(self) -> str:
        return json.dumps(
            {"login_name": self.login_name, "provider_account_id": self.provider_account_id}, separators=(",", ":")
        )


@dataclass(frozen=True)
class Batch:
    """A sync in progress: the window asked of every account, the accounts still to ask (id and
    Yodlee account type), how many of the first one's transactions were read and how many Yodlee
    counted in the window before the first page, and the ids of pending transactions seen so far
    (with the earliest such day)."""

    window_from: date
    window_to: date
    accounts: tuple[tuple[int, str], ...]
    skip: int = 0
    expected: int | None = None
    seen_pending: tuple[str, ...] = ()
    pending_from: date | None = None


@dataclass(frozen=True)
class SyncCursor:
    """Our cursor, since Yodlee has none. Between syncs: `through`, the day up to which the data
    was complete (the next sync asks from `through - OVERLAP_DAYS`, or from `pending_from` when a
    pending transaction is older), and `pending`, the pending ids last seen (one gone since was
    posted under a new id, or dropped, and is reported `removed`). During a batch, `batch` too."""

    through: date | None = None
    pending: tuple[str, ...] = ()
    pending_from: date | None = None
    batch: Batch | None = None

    @classmethod
    def parse(cls, text: str | None) -> SyncCursor:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            batch = raw.get("batch")
            return cls(
                through=_day(raw.get("through")),
                pending=tuple(str(p) for p in raw.get("pending", ())),
                pending_from=_day(raw.get("pending_from")),
                batch=Batch(
                    window_from=date.fromisoformat(batch["from"]),
                    window_to=date.fromisoformat(batch["to"]),
                    accounts=tuple((int(a), str(t)) for a, t in batch["accounts"]),
                    skip=int(batch.get("skip", 0)),
                    expected=batch.get("expected"),
                    seen_pending=tuple(str(p) for p in batch.get("seen_pending", ())),
                    pending_from=_day(batch.get("pending_from")),
                )
                if batch
                else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ProviderError("invalid", "MALFORMED_CURSOR", "not a Yodlee sync cursor") from error

    def dump(self) -> str:
        raw: dict[str, Any] = {
            "v": 1,
            "through": _iso(self.through),
            "pending": list(self.pending),
            "pending_from": _iso(self.pending_from),
        }
        if self.batch is not None:
            raw["batch"] = {
                "from": self.batch.window_from.isoformat(),
                "to": self.batch.window_to.isoformat(),
                "accounts": [list(account) for account in self.batch.accounts],
                "skip": self.batch.skip,
                "expected": self.batch.expected,
                "seen_pending": list(self.batch.seen_pending),
                "pending_from": _iso(self.batch.pending_from),
            }
        return json.dumps(raw, separators=(",", ":"))


UNKNOWN_LOGIN_NAME = "Y800"  # "Invalid value for loginName": Yodlee has no user of that name


def failure_kind(status: int, code: str) -> FailureKind:
    """Yodlee's HTTP status and `errorCode` as what the caller should do about it."""
    if status == 429:
        return "rate_limited"
    if status >= 500 or code == "Y868":  # Y868: the data is being refreshed right now
        return "unavailable"
    if status == 404 or code == "Y807":
        return "gone"
    return "invalid"


def raise_for(response: httpx.Response) -> None:
    """A Yodlee error response (`{errorCode, errorMessage, referenceCode}`) as a ProviderError."""
    raise_for_error(response, "Yodlee", ("errorCode", "errorMessage"), failure_kind)


class YodleeProvider:
    name = "yodlee"

    def __init__(
        self,
        *,
        api_url: str,
        fastlink_url: str,
        client_id: str,
        secret: str,
        admin_login_name: str,
        redirect_uri: str,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._fastlink_url = fastlink_url
        self._client_id = client_id
        self._secret = secret
        self._admin = admin_login_name
        self._redirect_uri = redirect_uri
        self._timeout = timeout
        # Per login name: a token and when it lapses. Only strings, so one adapter serves any event loop.
        self._tokens: dict[str, tuple[str, datetime]] = {}

    @asynccontextmanager
    async def _session(self, login_name: str) -> AsyncIterator[_Session]:
        """Requests as one Yodlee user within one operation (one client, connections reused)."""
        async with httpx.AsyncClient(base_url=self._api_url, timeout=self._timeout) as client:
            yield _Session(self, client, login_name)

    async def _send(self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Api-Version": API_VERSION, **kwargs.pop("headers", {})}
        return await send(client, "Yodlee", method, path, headers=headers, **kwargs)

    async def _token(self, client: httpx.AsyncClient, login_name: str, *, fresh: bool = False) -> str:
        held = self._tokens.get(login_name)
        if held is not None and not fresh and datetime.now(UTC) < held[1] - TOKEN_MARGIN:
            return held[0]
        response = await self._send(
            client,
            "POST",
            "/auth/token",
            headers={"loginName": login_name},
            content=urlencode({"clientId": self._client_id, "secret": self._secret}),
        )
        raise_for(response)
        token = response.json()["token"]
        expires = datetime.now(UTC) + timedelta(seconds=int(token.get("expiresIn", 1800)))
        self._tokens[login_name] = (str(token["accessToken"]), expires)
        return str(token["accessToken"])

    async def link(self, client_user_id: str, webhook_url: str | None, access_token: str | None = None) -> LinkStart:
        """FastLink for the member: registered at Yodlee on first use (their login name is our
        member id, nothing personal), a user token for FastLink (`link_token`, 30 minutes, posted to
        the FastLink URL as `accessToken`), and that URL with a random `state` to be echoed with the
        provider account id.
        With `access_token`: FastLink's edit flow for that provider account (the member logs in
        again; the id is kept). Notifications are subscribed per application at Yodlee, not here."""
        state = secrets.token_urlsafe(16)
        credentials = Credentials.parse(access_token) if access_token is not None else None
        login_name = credentials.login_name if credentials else client_user_id
        if credentials is None:
            async with self._session(self._admin) as admin:
                await admin.register(login_name)
        async with self._session(login_name) as session:
            token = await session.token()
        # The token is not in the URL (history and proxy logs keep URLs): FastLink is opened with
        # it in a POST body, `accessToken=<link_token>`, as Yodlee's fastlink.js does.
        query = {"redirect": self._redirect_uri, "state": state}
        if credentials is not None:
            query |= {"flow": "edit", "providerAccountId": str(credentials.provider_account_id)}
        expires = self._tokens[login_name][1]
        return LinkStart(
            link_token=token, auth_url=f"{self._fastlink_url}?{urlencode(query)}", expires_at=expires, state=state
        )

    async def exchange(self, public_token: str, client_user_id: str | None = None) -> Exchanged:
        """FastLink's callback names the provider account (`public_token`); it is this member's
        only if Yodlee finds it under their login name, which answers its site too."""
        if client_user_id is None or not public_token.isdigit():
            raise ProviderError(
                "invalid", "INVALID_PROVIDER_ACCOUNT", "a provider account id and its member are needed"
            )
        async with self._session(client_user_id) as session:
            try:
                found = await session.provider_account(int(public_token))
            except ProviderError as error:
                if error.kind == "gone":  # not this member's, or never linked
                    raise ProviderError("invalid", error.code, str(error)) from error
                raise
            accounts = await session.get("/accounts", params={"providerAccountId": public_token})
        names = {str(item.get("providerName")) for item in accounts.get("account", []) if item.get("providerName")}
        return Exchanged(
            access_token=Credentials(client_user_id, int(public_token)).dump(),
            item_id=str(found["id"]),
            institution_id=str(found.get("providerId")) if found.get("providerId") is not None else None,
            institution_name=min(names) if names else None,
        )

    async def accounts(self, access_token: str) -> list[Account]:
        credentials = Credentials.parse(access_token)
        async with self._session(credentials.login_name) as session:
            return [account for account, _ in await session.accounts(credentials.provider_account_id)]

    async def sync_page(self, access_token: str, cursor: str | None, count: int) -> SyncPage:
        """One page (up to `count`, at most 500) of one account's transactions over the batch's
        window. The first page of a batch reads the refresh status (a login Yodlee needs is
        `login_required`), lists the accounts and fixes the window. Pages are by `skip`, so a
        transaction arriving or going between pages shifts the rest: each account's count over the
        window is asked before its first page, and its last page finds a different number read
        when that happened (`mutation_during_pagination`: the batch restarts from its first cursor)."""
        credentials = Credentials.parse(access_token)
        state = SyncCursor.parse(cursor)
        top = max(1, min(count, MAX_TOP))
        async with self._session(credentials.login_name) as session:
            accounts: list[Account] = []
            batch = state.batch
            if batch is None:
                await session.check_refresh(credentials.provider_account_id)
                listed = await session.accounts(credentials.provider_account_id)
                accounts = [account for account, _ in listed]
                today = datetime.now(UTC).date()
                first_day = today - timedelta(days=HISTORY_DAYS)
                if state.through is not None:
                    first_day = min(d for d in (state.through - timedelta(days=OVERLAP_DAYS), state.pending_from) if d)
                batch = Batch(first_day, today, tuple((int(a.account_id), kind) for a, kind in listed))
            added: list[Transaction] = []
            if batch.accounts:
                (account_id, account_type), rest = batch.accounts[0], batch.accounts[1:]
                window = {
                    "accountId": str(account_id),
                    "fromDate": batch.window_from.isoformat(),
                    "toDate": batch.window_to.isoformat(),
                }
                if batch.expected is None:  # the account's first page: how many should come
                    counted = (await session.get("/transactions/count", params=window)).get("transaction", {})
                    batch = replace(batch, expected=int(counted.get("TOTAL", {}).get("count", 0)))
                page = (
                    await session.get("/transactions", params={**window, "skip": str(batch.skip), "top": str(top)})
                ).get("transaction", [])
                added = [transaction_of(item, account_type) for item in page]
                pending = [t for t in added if t.pending]
                pending_days = [t.posted_date for t in pending] + ([batch.pending_from] if batch.pending_from else [])
                batch = replace(
                    batch,
                    skip=batch.skip + len(page),
                    seen_pending=batch.seen_pending + tuple(t.transaction_id for t in pending),
                    pending_from=min(pending_days) if pending_days else None,
                )
                if len(page) < top:  # the account's last page: was every transaction read once?
                    if batch.skip != batch.expected:  # one arrived or went between pages: rows shifted
                        raise ProviderError(
                            "mutation_during_pagination",
                            "TRANSACTIONS_MOVED",
                            f"account {account_id}: {batch.expected} transactions counted, {batch.skip} read",
                        )
                    batch = replace(batch, accounts=rest, skip=0, expected=None)
        if batch.accounts:
            return SyncPage(
                added=added,
                modified=[],
                removed=[],
                accounts=accounts,
                next_cursor=replace(state, batch=batch).dump(),
                has_more=True,
            )
        still_pending = set(batch.seen_pending)
        complete = SyncCursor(
            through=batch.window_to, pending=tuple(sorted(still_pending)), pending_from=batch.pending_from
        )
        return SyncPage(
            added=added,
            modified=[],
            removed=sorted(set(state.pending) - still_pending),
            accounts=accounts,
            next_cursor=complete.dump(),
            has_more=False,
        )

    async def remove(self, access_token: str) -> None:
        """Delete the provider account at Yodlee: our access and its data there end. One already
        gone means there is nothing left to revoke."""
        credentials = Credentials.parse(access_token)
        async with self._session(credentials.login_name) as session:
            try:
                await session.request("DELETE", f"/providerAccounts/{credentials.provider_account_id}")
            except ProviderError as error:
                if error.kind not in ("gone", "login_required"):
                    raise

    async def verify_webhook(
        self, body: bytes, headers: dict[str, str], *, before_key_fetch: BeforeKeyFetch | None = None
    ) -> WebhookNotice:
        """Yodlee's REFRESH notifications (`REFRESH.PROCESS_COMPLETED`, …) carry no signature, so one
        is believed only as far as Yodlee confirms it: the provider account it names is read back
        under the login name it names (`before_key_fetch` is awaited before that outbound call),
        and the notice's details report the refresh status Yodlee gives now, not the body's.
        Other events (DATA_UPDATES extracts) are refused."""
        try:
            event = parse_json(body)["event"]
            info = str(event["info"])
            login_name = str(event["loginName"])
            provider_account_id = int(event["data"]["providerAccount"][0]["id"])
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise ProviderError("invalid", "MALFORMED_NOTIFICATION", "not a Yodlee REFRESH notification") from error
        if not info.startswith("REFRESH."):
            raise ProviderError("invalid", "UNSUPPORTED_NOTIFICATION", f"{info} is not acted on")
        if before_key_fetch is not None:
            await before_key_fetch(claimed_item=str(provider_account_id), claimed_member=login_name)
        async with self._session(login_name) as session:
            try:
                found = await session.provider_account(provider_account_id)
            except ProviderError as error:
                # No such provider account, or no such user (Y800: Yodlee knows no such login
                # name, refused at the token): a forgery.
                if error.kind == "gone" or error.code == UNKNOWN_LOGIN_NAME:
                    raise ProviderError("invalid", "UNCONFIRMED_NOTIFICATION", str(error)) from error
                if error.kind == "invalid":  # our own call refused (our credentials): not the sender's fault
                    raise ProviderError("unavailable", "CANNOT_CONFIRM_NOTIFICATION", str(error)) from error
                raise
        # A refresh ended, well or not: either way the sync is what finds out (a login needed is
        # its `login_required`).
        details: dict[str, object] = {"info": info, "status": refresh_status(found)}
        return WebhookNotice(str(provider_account_id), "TRANSACTIONS.SYNC_UPDATES_AVAILABLE", details)


def refresh_status(provider_account: dict[str, Any]) -> str:
    """What a provider account's refresh status means for us: `ok`, `login_required` or `in_progress`."""
    for dataset in provider_account.get("dataset") or []:
        additional = str(dataset.get("additionalStatus") or "")
        if additional in LOGIN_STATUSES or dataset.get("updateEligibility") == "ALLOW_UPDATE_WITH_CREDENTIALS":
            return "login_required"
        if additional in IN_PROGRESS_STATUSES:
            return "in_progress"
    if provider_account.get("status") == "USER_INPUT_REQUIRED":
        return "login_required"
    if provider_account.get("status") == "IN_PROGRESS":
        return "in_progress"
    return "ok"


@dataclass
class _Session:
    """Requests as one Yodlee user within one operation: a token from the adapter's cache, renewed
    once when Yodlee says it has lapsed (Y008 on 401)."""

    provider: YodleeProvider
    client: httpx.AsyncClient
    login_name: str

    async def token(self) -> str:
        return await self.provider._token(self.client, self.login_name)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self._authorised(method, path, await self.token(), **kwargs)
        if response.status_code == 401:  # lapsed or superseded (Y008): a new token, once
            fresh = await self.provider._token(self.client, self.login_name, fresh=True)
            response = await self._authorised(method, path, fresh, **kwargs)
        raise_for(response)
        return response

    async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        body = (await self.request("GET", path, params=params)).json()
        if not isinstance(body, dict):
            raise ProviderError("invalid", "MALFORMED_RESPONSE", f"{path} answered no object")
        return body

    async def register(self, login_name: str) -> None:
        """Register a user (as the admin); one registered already is fine."""
        try:
            await self.request("POST", "/user/register", json={"user": {"loginName": login_name}})
        except ProviderError as error:
            if error.code != "Y400":  # Y400: the login name exists
                raise

    async def provider_account(self, provider_account_id: int) -> dict[str, Any]:
        found = (await self.get(f"/providerAccounts/{provider_account_id}")).get("providerAccount") or []
        if not found:
            raise ProviderError("gone", "Y807", "no such provider account")
        return dict(found[0])

    async def check_refresh(self, provider_account_id: int) -> None:
        """Raise what the provider account's refresh status means for a sync, if anything."""
        status = refresh_status(await self.provider_account(provider_account_id))
        if status == "login_required":
            raise ProviderError("login_required", "USER_INPUT_REQUIRED", "the site needs the member to log in again")
        if status == "in_progress":
            raise ProviderError("unavailable", "REFRESH_IN_PROGRESS", "Yodlee is refreshing this provider account")

    async def accounts(self, provider_account_id: int) -> list[tuple[Account, str]]:
        """Every account of the provider account with its balance, and its Yodlee account type."""
        listed = (await self.get("/accounts", params={"providerAccountId": str(provider_account_id)})).get(
            "account", []
        )
        return [(account_of(item), str(item.get("accountType") or "")) for item in listed]

    async def _authorised(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "loginName": self.login_name}
        return await self.provider._send(self.client, method, path, headers=headers, **kwargs)


def _day(value: object) -> date | None:
    return date.fromisoformat(str(value)) if value else None


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


# Yodlee's `accountType` (container `bank`) as Plaid-style type and subtype, as Plaid's adapter gives.
ACCOUNT_TYPES: dict[str, tuple[str, str]] = {
    "CHECKING": ("depository", "checking"),
    "SAVINGS": ("depository", "savings"),
    "MONEY_MARKET": ("depository", "money market"),
    "CD": ("depository", "cd"),
    "CREDIT": ("credit", "credit card"),
}
_CONTAINERS: dict[str, tuple[str, str]] = {
    "creditCard": ("credit", "credit card"),
    "investment": ("investment", "brokerage"),
}


def account_of(item: dict[str, Any]) -> Account:
    digits = re.sub(r"\D", "", str(item.get("accountNumber") or ""))
    kind, subtype = ACCOUNT_TYPES.get(
        str(item.get("accountType")), _CONTAINERS.get(str(item.get("CONTAINER")), ("other", ""))
    )
    balance = item.get("balance") or item.get("currentBalance") or {}
    amount = balance.get("amount")
    return Account(
        account_id=str(item["id"]),
        name=str(item.get("accountName") or item["id"]),
        mask=digits[-4:] or None,
        type=kind,
        subtype=subtype or None,
        currency=str(balance.get("currency") or item.get("currency") or "USD"),
        balance_minor=to_minor(amount, money_out_positive=False) if amount is not None else None,
    )


# Yodlee's master `category` with the merchant's first `categoryLabel` as a Plaid
# `personal_finance_category` (v2) detailed name; the primary is its prefix. A (category, None)
# entry covers every label not listed. Kept small: what the behaviour rules read (food, gambling,
# rent, income, savings) is exact, the rest lands on the primary's OTHER.
CATEGORIES: dict[tuple[str, str | None], str] = {
    ("Restaurants", "Fast Food"): "FOOD_AND_DRINK_FAST_FOOD",
    ("Restaurants", "Coffee Shops"): "FOOD_AND_DRINK_COFFEE",
    ("Restaurants", "Restaurants"): "FOOD_AND_DRINK_RESTAURANT",
    ("Restaurants", None): "FOOD_AND_DRINK_RESTAURANT",
    ("Groceries", None): "FOOD_AND_DRINK_GROCERIES",
    ("Entertainment/Recreation", "Gambling"): "ENTERTAINMENT_CASINOS_AND_GAMBLING",
    ("Entertainment/Recreation", "Casinos"): "ENTERTAINMENT_CASINOS_AND_GAMBLING",
    ("Entertainment/Recreation", None): "ENTERTAINMENT_OTHER_ENTERTAINMENT",
    ("Rent", None): "RENT_AND_UTILITIES_RENT",
    ("Mortgage", None): "LOAN_PAYMENTS_MORTGAGE_PAYMENT",
    ("Utilities", None): "RENT_AND_UTILITIES_OTHER_UTILITIES",
    ("Telephone Services", None): "RENT_AND_UTILITIES_TELEPHONE",
    ("Cable/Satellite Services", None): "RENT_AND_UTILITIES_INTERNET_AND_CABLE",
    ("Salary/Regular Income", None): "INCOME_WAGES",
    ("Paychecks/Salary", None): "INCOME_WAGES",
    ("Interest Income", None): "INCOME_INTEREST_EARNED",
    ("Investment Income", None): "INCOME_DIVIDENDS",
    ("Other Income", None): "INCOME_OTHER_INCOME",
    ("Credit Card Payments", None): "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT",
    ("Loans", None): "LOAN_PAYMENTS_OTHER_PAYMENT",
    ("Service Charges/Fees", None): "BANK_FEES_OTHER_BANK_FEES",
    ("ATM/Cash Withdrawals", None): "TRANSFER_OUT_WITHDRAWAL",
    ("Gasoline/Fuel", None): "TRANSPORTATION_GAS",
    ("Automotive Expenses", None): "TRANSPORTATION_OTHER_TRANSPORTATION",
    ("Travel", None): "TRAVEL_OTHER_TRAVEL",
    ("Healthcare/Medical", None): "MEDICAL_OTHER_MEDICAL",
    ("Personal/Family", None): "PERSONAL_CARE_OTHER_PERSONAL_CARE",
    ("Clothing/Shoes", None): "GENERAL_MERCHANDISE_CLOTHING_AND_ACCESSORIES",
    ("Electronics/General Merchandise", None): "GENERAL_MERCHANDISE_OTHER_GENERAL_MERCHANDISE",
    ("Services/Supplies", None): "GENERAL_SERVICES_OTHER_GENERAL_SERVICES",
    ("Education", None): "GENERAL_SERVICES_EDUCATION",
    ("Charitable Giving", None): "GOVERNMENT_AND_NON_PROFIT_DONATIONS",
    ("Taxes", None): "GOVERNMENT_AND_NON_PROFIT_TAX_PAYMENT",
    ("Retirement Contributions", None): "TRANSFER_OUT_INVESTMENT_AND_RETIREMENT_FUNDS",
}
# Categories that name their Plaid category exactly (HIGH): every (category, None) entry above
# except the catch-alls of a broad Yodlee category.
_BROAD = frozenset(
    {"Restaurants", "Entertainment/Recreation", "Utilities", "Automotive Expenses", "Travel", "Personal/Family"}
)


def category_of(item: dict[str, Any], amount_minor: int, account_type: str) -> tuple[str | None, str | None]:
    """The Plaid-style detailed category of a Yodlee transaction (None when nothing fits), with how
    exactly it mapped in Plaid's confidence words (Yodlee gives none): `HIGH` where the category
    with its merchant label, or a category that names one thing (Rent, Groceries, Salary), settles
    it, or a transfer touches a savings account; `MEDIUM` where only a broad category matched or
    the transfer's direction and words decided."""
    category = str(item.get("category") or "")
    labels = [str(label) for label in (item.get("merchant") or {}).get("categoryLabel") or []]
    for label in labels[:1]:
        if (category, label) in CATEGORIES:
            return CATEGORIES[(category, label)], "HIGH"
    if (category, None) in CATEGORIES:
        return CATEGORIES[(category, None)], "MEDIUM" if category in _BROAD else "HIGH"
    if category in ("Savings", "Transfers", "Deposits") or item.get("categoryType") == "TRANSFER":
        savings_account = account_type == "SAVINGS"
        to_savings = category == "Savings" or savings_account
        level = "HIGH" if category == "Savings" or savings_account else "MEDIUM"
        if amount_minor > 0:
            return ("TRANSFER_IN_SAVINGS" if to_savings else "TRANSFER_IN_ACCOUNT_TRANSFER"), level
        return ("TRANSFER_OUT_SAVINGS" if to_savings else "TRANSFER_OUT_ACCOUNT_TRANSFER"), level
    return None, None


def transaction_of(item: dict[str, Any], account_type: str) -> Transaction:
    """A Yodlee transaction in our shape: its positive amount signed by `baseType` (DEBIT is money out)."""
    money = item.get("amount") or {}
    minor = abs(to_minor(money["amount"], money_out_positive=False))
    amount_minor = -minor if str(item.get("baseType")).upper() == "DEBIT" else minor
    detailed, confidence_level = category_of(item, amount_minor, account_type)
    description = item.get("description") or {}
    posted = item.get("postDate") or item.get("date") or item["transactionDate"]
    authorised = item.get("transactionDate")
    return Transaction(
        transaction_id=str(item["id"]),
        account_id=str(item["accountId"]),
        amount_minor=amount_minor,
        currency=str(money.get("currency") or "USD"),
        posted_date=date.fromisoformat(str(posted)[:10]),
        authorized_date=date.fromisoformat(str(authorised)[:10]) if authorised else None,
        description=str(description.get("original") or description.get("simple") or ""),
        merchant_name=(item.get("merchant") or {}).get("name"),
        category_primary=primary_category(detailed),
        category_detailed=detailed,
        pending=str(item.get("status")).upper() == "PENDING",
        pending_transaction_id=None,  # Yodlee does not link a posted transaction to its pending one
        category_confidence_level=confidence_level,
        mcc=None,  # Yodlee's merchant gives no merchant category code in v1.1's transaction
    )
