"""Open banking for members: link a bank, list and disconnect connections, read transactions with
their categories and correct a category; and `POST /v1/webhooks/plaid`, where Plaid says new
data is waiting.

Linking, reading and correcting need active `open_banking` consent (403 `consent-required`);
every read of bank data, and every correction, is audited. Each connection is kept current by
its `BankSyncWorkflow`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field

from badges.api.deps import (
    LimitedBySourceAddress,
    MemberId,
    Services,
    ServicesDep,
    SettingsDep,
    audit_member_access,
)
from badges.api.intake import temporal_or_503
from badges.api.problems import Problem
from badges.api.schemas import IsoDate, WireModel
from badges.api.throttle import parse_rate, source_address
from badges.banking.provider import BankProvider, ProviderError
from badges.config import Settings
from badges.db.audit import record_audit
from badges.db.banking import (
    LinkRefused,
    TransactionRecord,
    connection_by_item,
    connection_state,
    correct_category,
    link_connection,
    member_connections,
    member_transaction,
    member_transactions,
    remember_link_state,
    set_status,
    take_link_state,
)
from badges.db.consents import has_consent
from badges.domain.categories import SpendingCategory
from badges.domain.definitions import bank_sync_interval
from badges.temporal import signal_sync, start_sync

router = APIRouter(tags=["open banking"])

Provider = Literal["plaid", "truelayer", "yodlee"]


class LinkTokenRequest(WireModel):
    provider: Provider = "plaid"
    # Re-authenticate this connection (update mode) instead of linking a new one.
    connection_id: uuid.UUID | None = None


class LinkTokenView(WireModel):
    provider: Provider
    link_token: str | None
    auth_url: str | None
    expiration: datetime | None


class ConnectRequest(WireModel):
    provider: Provider = "plaid"
    public_token: str
    # TrueLayer and Yodlee: the `state` the redirect brought back with the code or the provider
    # account id (required).
    state: str | None = Field(None, max_length=256)


class AccountView(WireModel):
    account_id: str
    name: str
    mask: str | None
    type: str
    subtype: str | None
    currency: str
    balance_minor: int | None


class ConnectionView(WireModel):
    id: uuid.UUID
    provider: str
    institution_id: str | None
    institution_name: str | None
    status: Literal["syncing", "active", "degraded", "login_required", "disconnected"]
    last_synced_at: datetime | None
    created_at: datetime
    accounts: list[AccountView]


class Connections(WireModel):
    connections: list[ConnectionView]


CategorySourceName = Literal["provider", "model", "member"]


class TransactionView(WireModel):
    id: str = Field(description="This API's id of the transaction (for PATCH): opaque")
    connection_id: uuid.UUID
    transaction_id: str = Field(description="The provider's id (unique within a connection)")
    account_id: str
    amount_minor: int  # positive: money in; negative: money out
    currency: str
    posted_date: date
    authorized_date: date | None
    description: str
    merchant_name: str | None
    category: SpendingCategory | None = Field(
        description="The programme's category; null only briefly, for a transaction stored before categories existed"
    )
    category_source: CategorySourceName | None = Field(
        description="Who decided it: the provider's category, the categoriser model, or the member"
    )
    category_confidence: float | None = Field(description="How sure, 0 to 1 (a member's word is 1)")
    category_primary: str | None = Field(description="The provider's category (Plaid personal_finance_category v2)")
    category_detailed: str | None
    category_confidence_level: str | None = Field(description="The provider's confidence in its category")
    mcc: str | None = Field(description="Merchant category code (ISO 18245), where the provider gives one")
    pending: bool

    @classmethod
    def of(cls, record: TransactionRecord) -> TransactionView:
        return cls.model_validate(
            {**asdict(record), "id": encode_transaction_id(record.connection_id, record.transaction_id)}
        )


class CategoryCorrectionRequest(WireModel):
    category: SpendingCategory


class Transactions(WireModel):
    transactions: list[TransactionView]
    # Pass as `after` for the next page; null on the last one.
    next_after: str | None


async def require_open_banking(services: Services, member_id: uuid.UUID) -> None:
    if not await has_consent(services.pool, member_id, "open_banking", datetime.now(UTC)):
        raise Problem(
            403,
            "consent-required",
            "Bank data needs active `open_banking` consent: grant it with PUT /v1/me/consent.",
        )


def provider_problem(error: ProviderError) -> Problem:
    if error.kind in ("invalid", "gone", "login_required"):
        return Problem(400, "provider-refused", f"The bank provider refused the request ({error.code}).")
    if error.kind == "rate_limited":
        return Problem(
            503,
            "provider-busy",
            "The bank provider asks us to slow down; retry in a minute.",
            headers={"Retry-After": "60"},
        )
    return Problem(502, "provider-unavailable", f"The bank provider is not answering ({error.code}); retry shortly.")


async def sync_interval(services: Services, settings: Settings) -> timedelta:
    """How often a connection started now syncs: as often as the most demanding active badge's
    `syncIntervalHours` asks, never less often than the deployment's interval."""
    _, catalogue = await services.catalogue.current()
    return bank_sync_interval(catalogue, timedelta(seconds=settings.bank_sync_interval_seconds))


def provider_of(services: Services, name: str) -> BankProvider:
    provider = services.banking.get(name)
    if provider is None:
        raise Problem(400, "provider-not-configured", f"The provider {name!r} is not configured here.")
    return provider


async def owned_connection(services: Services, member_id: uuid.UUID, connection_id: uuid.UUID) -> ConnectionView:
    for item in await member_connections(services.pool, services.keys, member_id):
        if item.id == connection_id:
            return ConnectionView.model_validate(item, from_attributes=True)
    raise Problem(404, "connection-not-found", "You have no bank connection with that id.")


@router.post("/v1/me/bank/link-token", response_model=LinkTokenView)
async def link_token(
    body: LinkTokenRequest, member_id: MemberId, services: ServicesDep, settings: SettingsDep
) -> LinkTokenView:
    """A Plaid link token for the client's Link flow, or a TrueLayer authorisation URL whose
    `state` is bound to this member until `expiration` (or, with `connectionId`, for update mode)."""
    await require_open_banking(services, member_id)
    provider_name: str = body.provider
    access_token = None
    if body.connection_id is not None:
        await owned_connection(services, member_id, body.connection_id)
        state = await connection_state(services.pool, services.keys, body.connection_id)
        if state is not None:
            if "provider" in body.model_fields_set and body.provider != state.provider:
                raise Problem(
                    422, "provider-mismatch", f"That connection is with {state.provider}, not {body.provider}."
                )
            provider_name, access_token = state.provider, state.access_token
    provider = provider_of(services, provider_name)
    try:
        start = await provider.link(str(member_id), f"{settings.public_url}/v1/webhooks/plaid", access_token)
    except ProviderError as error:
        raise provider_problem(error) from error
    expiration = start.expires_at
    if start.state is not None:
        expiration = await remember_link_state(services.pool, member_id, provider_name, start.state)
    return LinkTokenView(
        provider=provider_name,  # type: ignore[arg-type]
        link_token=start.link_token,
        auth_url=start.auth_url,
        expiration=expiration,
    )


async def check_link_state(services: Services, member_id: uuid.UUID, provider: str, state: str | None) -> None:
    """A TrueLayer code or a Yodlee provider account is exchanged only with the `state` handed to
    this member with its authorisation (FastLink) URL, once and in time: otherwise a code for
    someone else's bank could be slipped into this member's account (login CSRF)."""
    if provider == "plaid":
        return
    if not state:
        raise Problem(422, "link-state-required", "Send the `state` that came back with the code.")
    record = await take_link_state(services.pool, state)
    if record is None:
        raise Problem(400, "link-state-unknown", "That link state was not handed out, or was used already; link again.")
    if record.user_id != member_id or record.provider != provider:
        raise Problem(403, "link-state-mismatch", "That bank link was not started by you; link again.")
    if record.expired:
        raise Problem(400, "link-state-expired", "That bank link was started too long ago; link again.")


@router.post(
    "/v1/me/bank/connections",
    response_model=ConnectionView,
    status_code=201,
    responses={200: {"model": ConnectionView}},
)
async def connect(
    body: ConnectRequest, member_id: MemberId, services: ServicesDep, settings: SettingsDep, response: Response
) -> ConnectionView:
    """Exchange the public token from Link, store the access token sealed with the member's key,
    and start syncing. Linking an institution already linked replaces that connection (200)."""
    await require_open_banking(services, member_id)
    provider = provider_of(services, body.provider)
    await check_link_state(services, member_id, body.provider, body.state)
    try:
        exchanged = await provider.exchange(body.public_token, str(member_id))
    except ProviderError as error:
        raise provider_problem(error) from error
    try:
        linked = await link_connection(services.pool, services.keys, member_id, body.provider, exchanged)
    except LinkRefused as refused:
        with contextlib.suppress(ProviderError):  # do not leave the new item live at the bank
            await provider.remove(exchanged.access_token)
        if refused.reason == "consent":
            raise Problem(403, "consent-required", "Open banking consent ended while linking.") from refused
        raise Problem(409, "connection-disconnecting", "This bank link is being disconnected; link again.") from refused
    connection_id = linked.connection_id
    if linked.replaced_token is not None:
        try:
            await provider.remove(linked.replaced_token)
        except ProviderError as error:  # the new item is in place; the old one stays live at the bank
            await record_audit(
                services.pool,
                actor="system",
                actor_role="system",
                action="bank.revoke_failed",
                subject=member_id,
                resource=f"bank/{connection_id}",
                purpose="replacing a re-linked bank item",
                details={"provider": body.provider, "code": error.code},
            )
    with temporal_or_503("The connection is stored but syncing cannot start right now; link again shortly."):
        # A running workflow (a replaced or re-authenticated item) syncs afresh at once.
        await start_sync(
            services.temporal, settings, member_id, connection_id, "relinked", await sync_interval(services, settings)
        )
    if not linked.created:
        response.status_code = 200
    return await owned_connection(services, member_id, connection_id)


@router.get("/v1/me/bank/connections", response_model=Connections)
async def list_connections(member_id: MemberId, services: ServicesDep) -> Connections:
    items = await member_connections(services.pool, services.keys, member_id)
    await audit_member_access(
        services,
        member_id,
        action="read.bank_connections",
        resource="/v1/me/bank/connections",
        details={"items": len(items)},
    )
    return Connections(connections=[ConnectionView.model_validate(item, from_attributes=True) for item in items])


@router.post(
    "/v1/me/bank/connections/{connection_id}/relinked",
    status_code=202,
    response_class=Response,
    responses={202: {"description": "Syncing resumes (no body)"}},
)
async def relinked(
    connection_id: uuid.UUID, member_id: MemberId, services: ServicesDep, settings: SettingsDep
) -> Response:
    """The member finished Link in update mode: syncing resumes at once. Each call forces a sync
    with the provider, so calls are limited per connection (`BADGES_RELINK_RATE`, 429 past it)."""
    await require_open_banking(services, member_id)
    await owned_connection(services, member_id, connection_id)
    await services.throttle.enforce(
        "connection-relinks", parse_rate(settings.relink_rate), str(connection_id), "re-links per connection"
    )
    with temporal_or_503("Syncing cannot resume right now; retry shortly."):
        await start_sync(
            services.temporal, settings, member_id, connection_id, "relinked", await sync_interval(services, settings)
        )
    return Response(status_code=202)


@router.delete(
    "/v1/me/bank/connections/{connection_id}",
    status_code=202,
    response_class=Response,
    responses={202: {"description": "Shows `disconnected` now; revoked and deleted shortly (no body)"}},
)
async def disconnect(
    connection_id: uuid.UUID, member_id: MemberId, services: ServicesDep, settings: SettingsDep
) -> Response:
    """Stop syncing, revoke the item at the provider, delete what the connection brought. The
    connection shows `disconnected` at once; the rest completes in its workflow, with retries."""
    connection = await owned_connection(services, member_id, connection_id)
    async with services.pool.connection() as db, db.transaction():
        await set_status(db, connection_id, "disconnected")
    with temporal_or_503("The connection is marked disconnected; the provider will be told when you retry."):
        await start_sync(services.temporal, settings, member_id, connection.id, "disconnect")
    return Response(status_code=202)


@router.get("/v1/me/transactions", response_model=Transactions)
async def transactions(
    member_id: MemberId,
    services: ServicesDep,
    since: IsoDate | None = None,
    until: IsoDate | None = None,
    month: Annotated[
        str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="one calendar month, `YYYY-MM`")
    ] = None,
    category: SpendingCategory | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[str | None, Query(max_length=200, description="`nextAfter` of the previous page")] = None,
) -> Transactions:
    """The member's transactions with their categories, newest first; `since` inclusive, `until`
    exclusive, `month` one calendar month of posted dates (with both, the overlap), `category` one
    programme category."""
    await require_open_banking(services, member_id)
    position = decode_position(after) if after is not None else None
    if month is not None:
        first = date.fromisoformat(f"{month}-01")
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        since = max(since, first) if since is not None else first
        until = min(until, following) if until is not None else following
    items = await member_transactions(
        services.pool,
        services.keys,
        member_id,
        since=since,
        until=until,
        limit=limit,
        after=position,
        category=category,
    )
    await audit_member_access(
        services, member_id, action="read.transactions", resource="/v1/me/transactions", details={"items": len(items)}
    )
    last = items[-1] if len(items) == limit else None
    return Transactions(
        transactions=[TransactionView.of(item) for item in items],
        next_after=encode_position(last.posted_date, last.connection_id, last.transaction_id) if last else None,
    )


@router.patch(
    "/v1/me/transactions/{transaction_id}",
    response_model=TransactionView,
    responses={404: {"description": "You have no transaction with that id"}},
)
async def correct_transaction_category(
    transaction_id: Annotated[str, Path(max_length=400, description="`id` of the transaction")],
    body: CategoryCorrectionRequest,
    member_id: MemberId,
    services: ServicesDep,
) -> TransactionView:
    """Correct the category of a transaction: the member's word wins over the provider and the
    model, survives re-syncs, and applies to every transaction of theirs from the same merchant,
    earlier and later. It is kept (per merchant, the merchant as a keyed digest and a sealed label)
    for the member's export and the categoriser's next training run."""
    await require_open_banking(services, member_id)
    connection_id, provider_id = decode_transaction_id(transaction_id)
    corrected = None
    if connection_id is not None:
        corrected = await correct_category(
            services.pool, services.keys, member_id, connection_id, provider_id, body.category
        )
    if corrected is None or connection_id is None:
        raise Problem(404, "transaction-not-found", "You have no transaction with that id.")
    await audit_member_access(
        services,
        member_id,
        action="write.transaction_category",
        resource=f"/v1/me/transactions/{transaction_id}",
        details={"category": body.category.value, "transactions": corrected.transactions},
    )
    record = await member_transaction(services.pool, services.keys, member_id, connection_id, provider_id)
    if record is None:  # removed by a sync since: the correction stands for the merchant
        raise Problem(404, "transaction-not-found", "That transaction was removed by your bank meanwhile.")
    return TransactionView.of(record)


def encode_transaction_id(connection_id: uuid.UUID, transaction_id: str) -> str:
    """A transaction's id in this API: its connection and the provider's id (unique only within a
    connection), URL-safe and opaque."""
    return base64.urlsafe_b64encode(connection_id.bytes + transaction_id.encode()).decode().rstrip("=")


def decode_transaction_id(value: str) -> tuple[uuid.UUID | None, str]:
    """(connection id, provider id), or (None, "") for what this API never gave out (a 404)."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        if len(raw) <= 16:
            return None, ""
        return uuid.UUID(bytes=raw[:16]), raw[16:].decode()
    except (ValueError, UnicodeDecodeError):
        return None, ""


def encode_position(posted: date, connection_id: uuid.UUID, transaction_id: str) -> str:
    """An opaque paging cursor: the last row's sort key."""
    raw = json.dumps([posted.isoformat(), str(connection_id), transaction_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(after: str) -> tuple[date, uuid.UUID, str]:
    try:
        posted, connection_id, transaction_id = json.loads(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)))
        return date.fromisoformat(posted), uuid.UUID(connection_id), str(transaction_id)
    except (ValueError, TypeError) as error:
        raise Problem(
            422,
            "validation-failed",
            "The request is not valid.",
            errors=[{"field": "query.after", "message": "not a cursor this API gave out (nextAfter)"}],
        ) from error


@router.post("/v1/webhooks/plaid", status_code=200, dependencies=[LimitedBySourceAddress])
async def plaid_webhook(request: Request, services: ServicesDep, settings: SettingsDep) -> dict[str, str]:
    """Verified (ES256 JWT in `Plaid-Verification`, body hash, 5-minute freshness) or 401. News
    for a connection wakes its sync workflow; anything else is acknowledged and ignored, so Plaid
    does not retry it. Fetching a verification key Plaid has not shown us yet is an outbound call,
    so those are limited per source address (`BADGES_KEY_FETCH_RATE`, 429 past it)."""
    return await provider_webhook(request, services, settings, "plaid")


@router.post("/v1/webhooks/yodlee", status_code=200, dependencies=[LimitedBySourceAddress])
async def yodlee_webhook(request: Request, services: ServicesDep, settings: SettingsDep) -> dict[str, str]:
    """Yodlee's REFRESH notifications (subscribe this URL at Yodlee). They are unsigned, so each
    is confirmed by reading the provider account it names back from Yodlee (or 401); those
    outbound reads are limited per source address (`BADGES_KEY_FETCH_RATE`, 429 past it). News
    for a connection wakes its sync workflow; anything else is acknowledged and ignored."""
    return await provider_webhook(request, services, settings, "yodlee")


class NotOurs(Exception):
    """An unsigned notice names no connection of ours (or not that connection's member)."""


async def provider_webhook(request: Request, services: Services, settings: Settings, provider: str) -> dict[str, str]:
    body = await request.body()
    address = source_address(request)

    async def before_key_fetch(claimed_item: str | None = None, claimed_member: str | None = None) -> None:
        if claimed_item is not None:  # an unsigned notice: about one of our connections, of its member?
            claimed = await connection_by_item(services.pool, provider, claimed_item)
            if claimed is None or (claimed_member is not None and claimed_member != str(claimed.user_id)):
                raise NotOurs
        rate = parse_rate(settings.key_fetch_rate)
        await services.throttle.enforce(
            f"{provider}-key-fetches", rate, address, "verification key fetches per address"
        )

    try:
        notice = await provider_of(services, provider).verify_webhook(
            body, dict(request.headers), before_key_fetch=before_key_fetch
        )
    except NotOurs:
        return {"status": "ignored"}  # nothing asked of the provider for a connection we do not have
    except ProviderError as error:
        if error.retryable:
            raise Problem(503, "provider-unavailable", "Cannot verify the webhook with the provider; retry.") from error
        raise Problem(401, "invalid-webhook", f"The webhook is not verified: {error.code}.") from error
    found = await connection_by_item(services.pool, provider, notice.item_id)
    if found is None or not notice.kind.startswith("TRANSACTIONS."):
        return {"status": "ignored"}
    with temporal_or_503("Cannot wake the sync right now; retry."):
        if not await signal_sync(services.temporal, found.connection_id, "sync_now"):
            return {"status": "ignored"}  # the connection's sync has ended (consent, disconnect)
    return {"status": "accepted"}
