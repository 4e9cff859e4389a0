"""The Plaid adapter: the official `plaid-python` client (synchronous, so each call runs in a
thread), Plaid's errors mapped to `ProviderError`, amounts and categories normalised, and webhook
verification as Plaid documents it (ES256 JWT in `Plaid-Verification`, key by `kid`, `iat` within
5 minutes, SHA-256 of the raw body)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import jwt
import plaid
import urllib3
from plaid.api import plaid_api
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.country_code import CountryCode
from plaid.model.institutions_get_by_id_request import InstitutionsGetByIdRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.item_remove_request import ItemRemoveRequest
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.products import Products
from plaid.model.transactions_sync_request import TransactionsSyncRequest
from plaid.model.transactions_sync_request_options import TransactionsSyncRequestOptions
from plaid.model.webhook_verification_key_get_request import WebhookVerificationKeyGetRequest

from badges.banking.provider import BeforeKeyFetch, FailureKind, ProviderError
from badges.domain.banking import Account, Exchanged, LinkStart, SyncPage, Transaction, WebhookNotice, to_minor
from badges.domain.event_data import text_problem
from badges.domain.json_input import parse_json

T = TypeVar("T")

WEBHOOK_MAX_AGE_SECONDS = 5 * 60
WEBHOOK_KEY_CACHE_SECONDS = 3600
WEBHOOK_KEYS_CACHED = 100
# A key id Plaid says it never issued is remembered as unknown this long, so a stream of webhooks
# naming it costs no further calls to Plaid; at most this many such ids are remembered (the oldest
# are forgotten first: ids made up at random are what fill it).
UNKNOWN_KEY_CACHE_SECONDS = 5 * 60
UNKNOWN_KEYS_CACHED = 10_000
MAX_KEY_ID_LENGTH = 128  # Plaid's key ids are UUIDs
REQUEST_TIMEOUT_SECONDS = 30
MAX_PAGE = 500  # Plaid's cap on transactions/sync `count`


def failure_kind(status: int, error: dict[str, Any]) -> FailureKind:
    code = error.get("error_code", "")
    if code == "ITEM_LOGIN_REQUIRED":
        return "login_required"
    if code == "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION":
        return "mutation_during_pagination"
    if status == 429 or error.get("error_type") == "RATE_LIMIT_EXCEEDED":
        return "rate_limited"
    if status >= 500 or error.get("error_type") in ("API_ERROR", "INSTITUTION_ERROR"):
        return "unavailable"
    if code in ("ITEM_NOT_FOUND", "INVALID_ACCESS_TOKEN"):
        return "gone"
    return "invalid"


class PlaidProvider:
    name = "plaid"

    def __init__(self, host: str, client_id: str, secret: str, *, client_name: str = "Badges") -> None:
        configuration = plaid.Configuration(host=host, api_key={"clientId": client_id, "secret": secret})
        self._api = plaid_api.PlaidApi(plaid.ApiClient(configuration))
        self._client_name = client_name
        self._webhook_keys: dict[str, tuple[dict[str, Any], float]] = {}  # kid -> (JWK, fetched at)
        self._unknown_keys: dict[str, float] = {}  # kid -> when Plaid said it has no such key

    async def _call(self, method: Callable[..., T], request: Any, **options: Any) -> T:
        try:
            return await asyncio.to_thread(method, request, _request_timeout=REQUEST_TIMEOUT_SECONDS, **options)
        except plaid.ApiException as error:
            try:
                body = json.loads(error.body or "{}")
            except ValueError:
                body = {}
            raise ProviderError(
                failure_kind(error.status or 0, body),
                body.get("error_code") or f"HTTP_{error.status}",
                body.get("error_message") or str(error.reason),
            ) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:  # refused, reset, timed out
            raise ProviderError("unavailable", "UNREACHABLE", str(error)) from error

    async def link(self, client_user_id: str, webhook_url: str | None, access_token: str | None = None) -> LinkStart:
        fields: dict[str, Any] = {
            "client_name": self._client_name,
            "language": "en",
            "country_codes": [CountryCode("GB"), CountryCode("US")],
            "user": LinkTokenCreateRequestUser(client_user_id=client_user_id),
        }
        if access_token is not None:
            fields["access_token"] = access_token  # update mode: the item is re-authenticated
        else:
            fields["products"] = [Products("transactions")]
        if webhook_url:
            fields["webhook"] = webhook_url
        response = await self._call(self._api.link_token_create, LinkTokenCreateRequest(**fields))
        return LinkStart(link_token=response.link_token, auth_url=None, expires_at=response.expiration)

    async def exchange(self, public_token: str, client_user_id: str | None = None) -> Exchanged:
        response = await self._call(
            self._api.item_public_token_exchange, ItemPublicTokenExchangeRequest(public_token=public_token)
        )
        try:
            accounts = await self._call(self._api.accounts_get, AccountsGetRequest(access_token=response.access_token))
            institution_id = accounts.item.get("institution_id")
            institution_name = None
            if institution_id:
                institution = await self._call(
                    self._api.institutions_get_by_id,
                    InstitutionsGetByIdRequest(
                        institution_id=institution_id, country_codes=[CountryCode("GB"), CountryCode("US")]
                    ),
                )
                institution_name = institution.institution.name
        except ProviderError:
            # Nothing will ever use this item: do not leave it live at the bank.
            with contextlib.suppress(ProviderError):
                await self.remove(response.access_token)
            raise
        return Exchanged(
            access_token=response.access_token,
            item_id=response.item_id,
            institution_id=institution_id,
            institution_name=institution_name,
        )

    async def accounts(self, access_token: str) -> list[Account]:
        response = await self._call(self._api.accounts_get, AccountsGetRequest(access_token=access_token))
        return [account_of(item) for item in response.accounts]

    async def sync_page(self, access_token: str, cursor: str | None, count: int) -> SyncPage:
        fields: dict[str, Any] = {
            "access_token": access_token,
            "count": min(count, MAX_PAGE),
            "options": TransactionsSyncRequestOptions(include_original_description=True),
        }
        if cursor:
            fields["cursor"] = cursor
        # The answer as plain JSON, not plaid-python's models: building and type-checking a model
        # costs about 2.4 ms of CPU per transaction here (bench/sync.py), 100x the rest of the
        # path, and a full history is thousands of them. The sandbox's contract tests hold its
        # answers to the models; `transaction_of` reads the fields the models would.
        response = await self._call(
            self._api.transactions_sync, TransactionsSyncRequest(**fields), _check_return_type=False
        )
        return SyncPage(
            added=[transaction_of(item) for item in response["added"]],
            modified=[transaction_of(item) for item in response["modified"]],
            removed=[item["transaction_id"] for item in response["removed"]],
            accounts=[account_of(item) for item in response["accounts"]],
            next_cursor=response["next_cursor"],
            has_more=bool(response["has_more"]),
        )

    async def remove(self, access_token: str) -> None:
        try:
            await self._call(self._api.item_remove, ItemRemoveRequest(access_token=access_token))
        except ProviderError as error:
            if error.kind != "gone":
                raise

    async def verify_webhook(
        self, body: bytes, headers: dict[str, str], *, before_key_fetch: BeforeKeyFetch | None = None
    ) -> WebhookNotice:
        token = headers.get("plaid-verification")
        if not token:
            raise ProviderError("invalid", "MISSING_VERIFICATION", "no Plaid-Verification header")
        if not token.isascii():  # a JWS is base64url and dots; PyJWT would fail encoding anything else
            raise ProviderError("invalid", "MALFORMED_VERIFICATION", "the verification JWT is not ASCII")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise ProviderError("invalid", "MALFORMED_VERIFICATION", str(error)) from error
        kid = header.get("kid")
        if header.get("alg") != "ES256" or not isinstance(kid, str) or not kid:
            raise ProviderError("invalid", "WRONG_ALGORITHM", "the verification JWT must be ES256 with a kid")
        if len(kid) > MAX_KEY_ID_LENGTH:
            raise ProviderError("invalid", "MALFORMED_VERIFICATION", "the key id is too long to be Plaid's")
        key = await self._webhook_key(kid, before_key_fetch)
        try:
            claims = jwt.decode(
                token, jwt.PyJWK(key).key, algorithms=["ES256"], options={"require": ["iat"], "verify_aud": False}
            )
        except jwt.InvalidTokenError as error:
            raise ProviderError("invalid", "BAD_SIGNATURE", str(error)) from error
        # PyJWT has checked that int() takes `iat`; compared as integers, as float() would
        # overflow on a huge one.
        if abs(int(time.time()) - int(claims["iat"])) > WEBHOOK_MAX_AGE_SECONDS:
            raise ProviderError("invalid", "STALE_WEBHOOK", "the verification JWT is older than 5 minutes")
        digest = hashlib.sha256(body).hexdigest().encode()
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a mismatch).
        if not hmac.compare_digest(str(claims.get("request_body_sha256", "")).encode(), digest):
            raise ProviderError("invalid", "BODY_MISMATCH", "the body is not the one that was signed")
        return notice_of(body)

    async def _webhook_key(self, kid: str, before_fetch: BeforeKeyFetch | None = None) -> dict[str, Any]:
        """The JWK for `kid`, cached for an hour (then fetched again, which shows an `expired_at`
        Plaid set meanwhile); at most `WEBHOOK_KEYS_CACHED` kept. A kid Plaid does not know is
        refused without asking again for `UNKNOWN_KEY_CACHE_SECONDS`."""
        cached = self._webhook_keys.get(kid)
        if cached is None or time.monotonic() - cached[1] > WEBHOOK_KEY_CACHE_SECONDS:
            refused_at = self._unknown_keys.get(kid)
            if refused_at is not None and time.monotonic() - refused_at < UNKNOWN_KEY_CACHE_SECONDS:
                raise ProviderError("invalid", "UNKNOWN_KEY", f"Plaid has no verification key {kid}")
            if before_fetch is not None:
                await before_fetch()
            try:
                response = await self._call(
                    self._api.webhook_verification_key_get, WebhookVerificationKeyGetRequest(key_id=kid)
                )
            except ProviderError as error:
                if error.kind == "invalid":  # Plaid answered, and has no such key (not an outage)
                    self._remember_unknown_key(kid)
                raise
            if len(self._webhook_keys) >= WEBHOOK_KEYS_CACHED:
                self._webhook_keys.clear()
            cached = (response.key.to_dict(), time.monotonic())
            self._webhook_keys[kid] = cached
        key = cached[0]
        if key.get("expired_at"):
            raise ProviderError("invalid", "EXPIRED_KEY", f"verification key {kid} has expired")
        return {name: key[name] for name in ("kty", "crv", "x", "y", "kid", "alg", "use") if name in key}

    def _remember_unknown_key(self, kid: str) -> None:
        self._unknown_keys.pop(kid, None)
        while len(self._unknown_keys) >= UNKNOWN_KEYS_CACHED:
            del self._unknown_keys[next(iter(self._unknown_keys))]  # the oldest (insertion order)
        self._unknown_keys[kid] = time.monotonic()


def notice_of(body: bytes) -> WebhookNotice:
    """A verified body as the notice we act on. Plaid sends a JSON object with a text `item_id`;
    anything else (its key signs what it signs) is refused, not a crash in the route."""
    try:
        payload = parse_json(body)
    except ValueError as error:  # not UTF-8, not JSON, nested too deeply (JsonTooDeep)
        raise ProviderError("invalid", "MALFORMED_BODY", "the webhook body is not JSON") from error
    item_id = payload.get("item_id", "") if isinstance(payload, dict) else None
    if not isinstance(item_id, str) or text_problem(item_id):
        raise ProviderError("invalid", "MALFORMED_BODY", "the webhook body is not an object with a text item_id")
    return WebhookNotice(
        item_id=item_id,
        kind=f"{payload.get('webhook_type')}.{payload.get('webhook_code')}",
        details={k: v for k, v in payload.items() if k not in ("item_id", "webhook_type", "webhook_code")},
    )


def account_of(item: Any) -> Account:
    """An account from plaid-python's model or its plain JSON (both answer `[]` and `.get`)."""
    balances = item["balances"]
    currency = balances.get("iso_currency_code") or balances.get("unofficial_currency_code") or "GBP"
    current = balances.get("current")
    return Account(
        account_id=item["account_id"],
        name=item.get("official_name") or item["name"],
        mask=item.get("mask"),
        type=str(item["type"]),
        subtype=str(item["subtype"]) if item.get("subtype") is not None else None,
        currency=currency,
        balance_minor=to_minor(current, money_out_positive=False) if current is not None else None,
    )


def as_date(value: date | str | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def transaction_of(item: Any) -> Transaction:
    """A transaction from plaid-python's model or its plain JSON."""
    category = item.get("personal_finance_category")
    posted = as_date(item["date"])
    if posted is None:
        raise ProviderError("invalid", "MISSING_FIELD", "a transaction without a date")
    return Transaction(
        transaction_id=item["transaction_id"],
        account_id=item["account_id"],
        amount_minor=to_minor(item["amount"], money_out_positive=True),  # Plaid: positive = money out
        currency=item.get("iso_currency_code") or item.get("unofficial_currency_code") or "GBP",
        posted_date=posted,
        authorized_date=as_date(item.get("authorized_date")),
        description=item.get("original_description") or item["name"],
        merchant_name=item.get("merchant_name"),
        category_primary=category["primary"] if category else None,
        category_detailed=category["detailed"] if category else None,
        pending=bool(item["pending"]),
        pending_transaction_id=item.get("pending_transaction_id"),
        category_confidence_level=category.get("confidence_level") if category else None,
        mcc=item.get("merchant_category_code") or None,
    )
