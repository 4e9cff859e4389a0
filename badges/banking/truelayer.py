"""The TrueLayer adapter: Data API v1 over httpx, with OAuth code exchange, hour-long access tokens
refreshed as they lapse, and the 90-day consent surfaced as `login_required`. TrueLayer has no
transactions cursor, so the cursor is ours (`SyncCursor`); amounts, categories and errors are
normalised to the programme's conventions here, at the edge.

What we store as the connection's "access token" is `Credentials` as JSON (sealed by the caller):
TrueLayer's access and refresh tokens with their expiry and the consent's. A sync page that had to
refresh them returns the new JSON in `SyncPage.access_token`, stored with the batch.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
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

SCOPES = "info accounts balance transactions offline_access"
# UK Open Banking and OAuth providers; the auth dialog lets the member choose among them.
DEFAULT_PROVIDERS = "uk-ob-all uk-oauth-all"
REQUEST_TIMEOUT_SECONDS = 30.0
# TrueLayer serves up to 24 months of history on the first connection (less for some banks).
HISTORY_DAYS = 730
# Banks post late and rewrite recent days, so each sync asks again for this many days before the
# date through which the last one was complete; the store upserts by transaction id.
OVERLAP_DAYS = 10
# Refresh a little before the access token lapses, so a request never races its expiry.
EXPIRY_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True)
class Credentials:
    """What we hold for one TrueLayer connection (the `access_token` of our interface, as JSON)."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime
    consent_expires_at: datetime | None

    @classmethod
    def parse(cls, text: str) -> Credentials:
        try:
            raw = json.loads(text)
            return cls(
                access_token=str(raw["access_token"]),
                refresh_token=raw.get("refresh_token"),
                expires_at=_instant(raw["expires_at"]) or datetime.min.replace(tzinfo=UTC),
                consent_expires_at=_instant(raw.get("consent_expires_at")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ProviderError("invalid", "MALFORMED_CREDENTIALS", "not TrueLayer credentials") from error

    def dump(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_at": self.expires_at.isoformat(),
                "consent_expires_at": self.consent_expires_at.isoformat() if self.consent_expires_at else None,
            },
            separators=(",", ":"),
        )

    def lapsed(self, now: datetime) -> bool:
        return now >= self.expires_at - EXPIRY_MARGIN


@dataclass(frozen=True)
class Batch:
    """A sync in progress: the window asked of every account, the accounts still to ask (id and
    TrueLayer account type) and the ids of pending transactions seen so far."""

    window_from: datetime
    window_to: datetime
    accounts: tuple[tuple[str, str], ...]
    seen_pending: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncCursor:
    """Our cursor, since TrueLayer has none. Between syncs: `through`, the day up to which the data
    was complete (the next sync asks from `through - OVERLAP_DAYS`), and `pending`, the pending
    transaction ids last seen (one that has gone since was posted or dropped, and is reported
    `removed`: TrueLayer gives a posted transaction a new id). During a batch, `batch` as well."""

    through: date | None = None
    pending: tuple[str, ...] = ()
    batch: Batch | None = None

    @classmethod
    def parse(cls, text: str | None) -> SyncCursor:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            batch = raw.get("batch")
            return cls(
                through=date.fromisoformat(raw["through"]) if raw.get("through") else None,
                pending=tuple(raw.get("pending", ())),
                batch=Batch(
                    window_from=datetime.fromisoformat(batch["from"]),
                    window_to=datetime.fromisoformat(batch["to"]),
                    accounts=tuple((str(a), str(t)) for a, t in batch["accounts"]),
                    seen_pending=tuple(batch.get("seen_pending", ())),
                )
                if batch
                else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ProviderError("invalid", "MALFORMED_CURSOR", "not a TrueLayer sync cursor") from error

    def dump(self) -> str:
        raw: dict[str, Any] = {"v": 1, "through": self.through.isoformat() if self.through else None}
        raw["pending"] = list(self.pending)
        if self.batch is not None:
            raw["batch"] = {
                "from": self.batch.window_from.isoformat(),
                "to": self.batch.window_to.isoformat(),
                "accounts": [list(account) for account in self.batch.accounts],
                "seen_pending": list(self.batch.seen_pending),
            }
        return json.dumps(raw, separators=(",", ":"))


def failure_kind(status: int, error: str) -> FailureKind:
    """TrueLayer's HTTP status and `error` code as what the caller should do about it."""
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "unavailable"
    if error == "invalid_grant" or status in (401, 403):  # expired consent, revoked or re-auth needed
        return "login_required"
    if status == 404:
        return "gone"
    return "invalid"


def raise_for(response: httpx.Response) -> None:
    """A TrueLayer error response (`{"error", "error_description"}`) as a ProviderError."""
    raise_for_error(response, "TrueLayer", ("error", "error_description"), failure_kind)


class TrueLayerProvider:
    name = "truelayer"

    def __init__(
        self,
        *,
        auth_url: str,
        api_url: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        providers: str = DEFAULT_PROVIDERS,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self._auth_url = auth_url.rstrip("/")
        self._api_url = api_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._providers = providers
        self._timeout = timeout

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        """One client per operation: connections are reused across its requests, and nothing is
        bound to an event loop beyond the call (the API and the worker each run their own)."""
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            yield client

    async def _send(self, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return await send(client, "TrueLayer", method, url, **kwargs)

    async def link(self, client_user_id: str, webhook_url: str | None, access_token: str | None = None) -> LinkStart:
        """The auth dialog URL (TrueLayer's Data API sends no webhooks, so `webhook_url` is unused).
        With `access_token`: a re-authentication link for that connection (`/v1/reauthuri`), which
        keeps its credentials id and restarts its 90-day consent. The `state` is random and
        answered in the `LinkStart`: the caller binds it to the member and checks it with the
        code the redirect brings back."""
        state = secrets.token_urlsafe(16)
        if access_token is None:
            query = {
                "response_type": "code",
                "client_id": self._client_id,
                "redirect_uri": self._redirect_uri,
                "scope": SCOPES,
                "providers": self._providers,
                "state": state,
            }
            return LinkStart(
                link_token=None, auth_url=f"{self._auth_url}/?{urlencode(query)}", expires_at=None, state=state
            )
        credentials = Credentials.parse(access_token)
        if credentials.refresh_token is None:
            raise ProviderError("invalid", "NO_REFRESH_TOKEN", "this connection cannot be re-authenticated")
        async with self._client() as client:
            response = await self._send(
                client,
                "POST",
                f"{self._auth_url}/v1/reauthuri",
                json={
                    "response_type": "code",
                    "client_id": self._client_id,
                    "redirect_uri": self._redirect_uri,
                    "refresh_token": credentials.refresh_token,
                    "state": state,
                },
            )
        raise_for(response)
        return LinkStart(link_token=None, auth_url=str(response.json()["result"]), expires_at=None, state=state)

    async def exchange(self, public_token: str, client_user_id: str | None = None) -> Exchanged:
        """Exchange the `code` from the redirect for tokens, then ask `/me` which credentials and
        provider they are for (the credentials id is our item id; re-authentication keeps it)."""
        async with self._client() as client:
            response = await self._send(
                client,
                "POST",
                f"{self._auth_url}/connect/token",
                data={
                    "grant_type": "authorization_code",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                    "redirect_uri": self._redirect_uri,
                    "code": public_token,
                },
            )
            try:
                raise_for(response)
            except ProviderError as error:
                if error.kind == "login_required":  # invalid_grant: a used, stale or foreign code
                    raise ProviderError("invalid", error.code, str(error)) from error
                raise
            session = _Session(self, client, _credentials_of(response.json(), None))
            me = (await session.get("/data/v1/me"))[0]
        credentials = replace(session.credentials, consent_expires_at=_instant(me.get("consent_expires_at")))
        provider = me.get("provider") or {}
        return Exchanged(
            access_token=credentials.dump(),
            item_id=str(me["credentials_id"]),
            institution_id=provider.get("provider_id"),
            institution_name=provider.get("display_name"),
        )

    async def accounts(self, access_token: str) -> list[Account]:
        """The connection's accounts with balances. Refreshed tokens cannot be handed back from
        here (the interface returns none), so this is best called with fresh credentials."""
        async with self._client() as client:
            session = _Session(self, client, Credentials.parse(access_token))
            return [account for account, _ in await session.accounts()]

    async def sync_page(self, access_token: str, cursor: str | None, count: int) -> SyncPage:
        """One account's transactions over the batch's window, with its pending ones. The first
        page of a batch lists the accounts and fixes the window: from `through - OVERLAP_DAYS`
        (24 months back on the first sync) to now. `count` is not enforced: TrueLayer does not
        page, it answers a window whole."""
        state = SyncCursor.parse(cursor)
        async with self._client() as client:
            session = _Session(self, client, Credentials.parse(access_token))
            accounts: list[Account] = []
            batch = state.batch
            if batch is None:
                listed = await session.accounts()
                accounts = [account for account, _ in listed]
                # To the next whole second: nothing booked in this one is left out of the window.
                now = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
                first_day = (
                    now.date() - timedelta(days=HISTORY_DAYS)
                    if state.through is None
                    else state.through - timedelta(days=OVERLAP_DAYS)
                )
                start = datetime.combine(first_day, time(), UTC)
                batch = Batch(start, now, tuple((account.account_id, kind) for account, kind in listed))
            added: list[Transaction] = []
            if batch.accounts:
                (account_id, account_type), rest = batch.accounts[0], batch.accounts[1:]
                # A plain date and a whole-second time: what every provider behind TrueLayer accepts.
                window = {"from": batch.window_from.date().isoformat(), "to": batch.window_to.isoformat()}
                base = f"/data/v1/accounts/{account_id}/transactions"
                try:
                    booked = await session.get(base, params=window)
                    pending = await session.get(f"{base}/pending")
                except ProviderError as error:
                    if error.kind != "gone":
                        raise
                    booked, pending = [], []  # the account closed since the batch began: nothing to add
                added = [transaction_of(item, account_id, account_type, pending=False) for item in booked]
                added += [transaction_of(item, account_id, account_type, pending=True) for item in pending]
                seen = batch.seen_pending + tuple(str(item["transaction_id"]) for item in pending)
                batch = replace(batch, accounts=rest, seen_pending=seen)
            refreshed = session.credentials.dump() if session.refreshed else None
        if batch.accounts:
            return SyncPage(
                added=added,
                modified=[],
                removed=[],
                accounts=accounts,
                next_cursor=replace(state, batch=batch).dump(),
                has_more=True,
                access_token=refreshed,
            )
        still_pending = set(batch.seen_pending)
        complete = SyncCursor(through=batch.window_to.date(), pending=tuple(sorted(still_pending)))
        return SyncPage(
            added=added,
            modified=[],
            removed=sorted(set(state.pending) - still_pending),
            accounts=accounts,
            next_cursor=complete.dump(),
            has_more=False,
            access_token=refreshed,
        )

    async def remove(self, access_token: str) -> None:
        """Revoke the credentials at TrueLayer. Tokens that no longer work (refused even after a
        refresh) or credentials already deleted mean there is nothing left to revoke."""
        async with self._client() as client:
            session = _Session(self, client, Credentials.parse(access_token))
            try:
                await session.request("DELETE", f"{self._auth_url}/api/delete", data_access=False)
            except ProviderError as error:
                if error.kind not in ("gone", "login_required"):
                    raise

    async def verify_webhook(
        self, body: bytes, headers: dict[str, str], *, before_key_fetch: BeforeKeyFetch | None = None
    ) -> WebhookNotice:
        """TrueLayer's Data API sends us no transaction webhooks: nothing claiming to be one is
        trusted."""
        raise ProviderError("invalid", "NO_WEBHOOKS", "TrueLayer's Data API sends no webhooks to verify")

    async def _refresh(self, client: httpx.AsyncClient, credentials: Credentials) -> Credentials:
        if credentials.refresh_token is None:
            raise ProviderError("login_required", "NO_REFRESH_TOKEN", "the access token lapsed and cannot be renewed")
        response = await self._send(
            client,
            "POST",
            f"{self._auth_url}/connect/token",
            data={
                "grant_type": "refresh_token",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "refresh_token": credentials.refresh_token,
            },
        )
        raise_for(response)
        return _credentials_of(response.json(), credentials)


@dataclass
class _Session:
    """Requests on behalf of one connection within one operation: refreshes its tokens before
    they lapse and once on a 401, and refuses outright once the consent has expired."""

    provider: TrueLayerProvider
    client: httpx.AsyncClient
    credentials: Credentials
    refreshed: bool = False
    _retried_unauthorised: bool = field(default=False, repr=False)

    async def request(self, method: str, url: str, *, data_access: bool = True, **kwargs: Any) -> httpx.Response:
        """`data_access`: a request for the member's data, pointless once the consent has ended
        (revoking is not one: it is worth trying while the access token still works)."""
        now = datetime.now(UTC)
        consent_ends = self.credentials.consent_expires_at
        if data_access and consent_ends is not None and now >= consent_ends:
            # TrueLayer's 90-day reconfirmation: nothing works until the member re-authenticates.
            raise ProviderError("login_required", "CONSENT_EXPIRED", f"the consent expired at {consent_ends}")
        if self.credentials.lapsed(now):
            await self._refresh()
        response = await self._authorised(method, url, **kwargs)
        if response.status_code == 401 and not self._retried_unauthorised:
            # Our clock and TrueLayer's may disagree, or the token was superseded: refresh once.
            self._retried_unauthorised = True
            await self._refresh()
            response = await self._authorised(method, url, **kwargs)
        raise_for(response)
        return response

    async def get(self, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The `results` of a Data API GET."""
        response = await self.request("GET", f"{self.provider._api_url}{path}", params=params)
        results = response.json().get("results")
        if not isinstance(results, list):
            raise ProviderError("invalid", "MALFORMED_RESPONSE", f"{path} answered without results")
        return results

    async def accounts(self) -> list[tuple[Account, str]]:
        """Every account with its balance, and its TrueLayer account type."""
        listed = []
        for item in await self.get("/data/v1/accounts"):
            balances = await self.get(f"/data/v1/accounts/{item['account_id']}/balance")
            listed.append((account_of(item, balances[0] if balances else None), str(item.get("account_type", ""))))
        return listed

    async def _authorised(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.credentials.access_token}"}
        return await self.provider._send(self.client, method, url, headers=headers, **kwargs)

    async def _refresh(self) -> None:
        self.credentials = await self.provider._refresh(self.client, self.credentials)
        self.refreshed = True


def _credentials_of(tokens: dict[str, Any], previous: Credentials | None) -> Credentials:
    """A token response as credentials; a refresh keeps the consent's expiry (and the refresh
    token, should TrueLayer not rotate it)."""
    return Credentials(
        access_token=str(tokens["access_token"]),
        refresh_token=tokens.get("refresh_token") or (previous.refresh_token if previous else None),
        expires_at=datetime.now(UTC) + timedelta(seconds=int(tokens.get("expires_in", 3600))),
        consent_expires_at=previous.consent_expires_at if previous else None,
    )


def _instant(value: object) -> datetime | None:
    if not value:
        return None
    instant = datetime.fromisoformat(str(value))
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


# TrueLayer account types (`account_type`) as Plaid-style type and subtype, as Plaid's adapter gives.
ACCOUNT_TYPES: dict[str, tuple[str, str]] = {
    "TRANSACTION": ("depository", "checking"),
    "SAVINGS": ("depository", "savings"),
    "BUSINESS_TRANSACTION": ("depository", "checking"),
    "BUSINESS_SAVINGS": ("depository", "savings"),
}


def account_of(item: dict[str, Any], balance: dict[str, Any] | None) -> Account:
    number = item.get("account_number") or {}
    digits = str(number.get("number") or number.get("iban") or "")
    kind, subtype = ACCOUNT_TYPES.get(str(item.get("account_type")), ("other", None))
    current = balance.get("current") if balance else None
    return Account(
        account_id=str(item["account_id"]),
        name=str(item.get("display_name") or item["account_id"]),
        mask=digits[-4:] or None,
        type=kind,
        subtype=subtype,
        currency=str(item.get("currency") or "GBP"),
        balance_minor=to_minor(current, money_out_positive=False) if current is not None else None,
    )


# TrueLayer's `transaction_classification` ([top, sub], a Mint-like taxonomy) as a Plaid
# `personal_finance_category` (v2) detailed name; the primary is its prefix. A (top, None) entry
# covers every sub-classification not listed. Kept small: what the behaviour rules read (food,
# gambling, rent, savings) is exact, the rest lands on the primary's OTHER.
CLASSIFICATIONS: dict[tuple[str, str | None], str] = {
    ("Food & Dining", "Groceries"): "FOOD_AND_DRINK_GROCERIES",
    ("Food & Dining", "Fast Food"): "FOOD_AND_DRINK_FAST_FOOD",
    ("Food & Dining", "Restaurants"): "FOOD_AND_DRINK_RESTAURANT",
    ("Food & Dining", "Coffee shops"): "FOOD_AND_DRINK_COFFEE",
    ("Food & Dining", "Alcohol & Bars"): "FOOD_AND_DRINK_BEER_WINE_AND_LIQUOR",
    ("Food & Dining", None): "FOOD_AND_DRINK_OTHER_FOOD_AND_DRINK",
    ("Entertainment", "Gambling"): "ENTERTAINMENT_CASINOS_AND_GAMBLING",
    ("Gambling", None): "ENTERTAINMENT_CASINOS_AND_GAMBLING",
    ("Entertainment", None): "ENTERTAINMENT_OTHER_ENTERTAINMENT",
    ("Home", "Mortgage & Rent"): "RENT_AND_UTILITIES_RENT",
    ("Home", None): "HOME_IMPROVEMENT_OTHER_HOME_IMPROVEMENT",
    ("Bills and Utilities", None): "RENT_AND_UTILITIES_OTHER_UTILITIES",
    ("Shopping", None): "GENERAL_MERCHANDISE_OTHER_GENERAL_MERCHANDISE",
    ("Auto & Transport", None): "TRANSPORTATION_OTHER_TRANSPORTATION",
    ("Travel", None): "TRAVEL_OTHER_TRAVEL",
    ("Health & Fitness", None): "MEDICAL_OTHER_MEDICAL",
    ("Personal Care", None): "PERSONAL_CARE_OTHER_PERSONAL_CARE",
    ("Education", None): "GENERAL_SERVICES_EDUCATION",
    ("Fees & Charges", None): "BANK_FEES_OTHER_BANK_FEES",
    ("Gifts & Donations", None): "GOVERNMENT_AND_NON_PROFIT_DONATIONS",
    ("Taxes", None): "GOVERNMENT_AND_NON_PROFIT_TAX_PAYMENT",
    ("Investments", None): "TRANSFER_OUT_INVESTMENT_AND_RETIREMENT_FUNDS",
}
# Unclassified transactions (credits and transfers usually are) by `transaction_category`.
CATEGORIES: dict[str, str] = {
    "INTEREST": "INCOME_INTEREST_EARNED",
    "DIVIDEND": "INCOME_DIVIDENDS",
    "FEE_CHARGE": "BANK_FEES_OTHER_BANK_FEES",
    "ATM": "TRANSFER_OUT_WITHDRAWAL",
    "CASH": "TRANSFER_IN_DEPOSIT",
}
_WAGES = re.compile(r"\b(SALARY|PAYROLL|WAGES?|PAYE)\b", re.IGNORECASE)
_SAVINGS = re.compile(r"\bSAVINGS?\b|\bSAVER\b|\bISA\b", re.IGNORECASE)


def category_of(item: dict[str, Any], amount_minor: int, account_type: str) -> tuple[str | None, str | None]:
    """The Plaid-style detailed category of a TrueLayer transaction (None when nothing fits), with
    how exactly it mapped, in Plaid's confidence words (TrueLayer gives no confidence of its own):
    `HIGH` where its classification names the category itself (top and sub listed), its
    `transaction_category` settles it, or the account is a savings account; `MEDIUM` where only
    the top classification matched, or the description's words decided (salary, savings)."""
    classification = [str(part) for part in item.get("transaction_classification") or []]
    if classification:
        top, sub = classification[0], classification[1] if len(classification) > 1 else None
        if sub is not None and (top, sub) in CLASSIFICATIONS:
            return CLASSIFICATIONS[(top, sub)], "HIGH"
        if (top, None) in CLASSIFICATIONS:
            return CLASSIFICATIONS[(top, None)], "MEDIUM"
    kind = str(item.get("transaction_category") or "")
    if kind in CATEGORIES:
        return CATEGORIES[kind], "HIGH"
    description = str(item.get("description") or "")
    if kind in ("TRANSFER", "STANDING_ORDER", "DIRECT_DEBIT", "CREDIT", "DEBIT", "OTHER", "UNKNOWN"):
        savings_account = account_type.endswith("SAVINGS")
        to_savings = savings_account or bool(_SAVINGS.search(description))
        level = "HIGH" if savings_account else "MEDIUM"
        if amount_minor > 0:
            if kind == "CREDIT" or _WAGES.search(description):
                return ("INCOME_WAGES" if _WAGES.search(description) else "INCOME_OTHER_INCOME"), "MEDIUM"
            return ("TRANSFER_IN_SAVINGS" if to_savings else "TRANSFER_IN_ACCOUNT_TRANSFER"), level
        if kind in ("TRANSFER", "STANDING_ORDER"):
            return ("TRANSFER_OUT_SAVINGS" if to_savings else "TRANSFER_OUT_ACCOUNT_TRANSFER"), level
    return None, None


def signed_minor(item: dict[str, Any]) -> int:
    """The amount in our convention. TrueLayer's account transactions are already negative for
    money out, but card transactions are positive for purchases, so `transaction_type` decides
    the sign whenever it says DEBIT or CREDIT."""
    minor = to_minor(item["amount"], money_out_positive=False)
    kind = str(item.get("transaction_type") or "").upper()
    if kind == "DEBIT":
        return -abs(minor)
    if kind == "CREDIT":
        return abs(minor)
    return minor


def transaction_of(item: dict[str, Any], account_id: str, account_type: str, *, pending: bool) -> Transaction:
    amount_minor = signed_minor(item)
    detailed, confidence_level = category_of(item, amount_minor, account_type)
    primary = primary_category(detailed)
    return Transaction(
        transaction_id=str(item["transaction_id"]),
        account_id=account_id,
        amount_minor=amount_minor,
        currency=str(item.get("currency") or "GBP"),
        posted_date=datetime.fromisoformat(str(item["timestamp"])).date(),
        authorized_date=None,  # TrueLayer gives one timestamp per transaction
        description=str(item.get("description") or ""),
        merchant_name=item.get("merchant_name"),
        category_primary=primary,
        category_detailed=detailed,
        pending=pending,
        pending_transaction_id=None,  # TrueLayer does not link a posted transaction to its pending one
        category_confidence_level=confidence_level,
        mcc=None,  # TrueLayer's Data API gives no merchant category code
    )
