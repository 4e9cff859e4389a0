"""What bank sync needs done in the world: pull a complete batch from the provider, categorise it
and apply it with its cursor, record connection status changes (and tell the member), disconnect
at the provider and delete what the connection brought."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from badges.banking.provider import BankProvider, ProviderError
from badges.db.audit import append_audit
from badges.db.banking import (
    ConnectionState,
    SyncBatch,
    Uncategorised,
    apply_sync_batch,
    connection_state,
    delete_connection,
    member_connection_ids,
    set_status,
    store_categories,
    store_credentials,
    uncategorised_transactions,
)
from badges.db.consents import has_consent
from badges.db.keys import KeyStore
from badges.db.outbox import append_insight
from badges.db.provider_breakers import admit_sync, record_provider_failure, record_provider_success
from badges.domain.banking import Account, Transaction
from badges.domain.categories import Categorised
from badges.domain.provider_breaker import BreakerPolicy
from badges.insights.categoriser import Categoriser, categorise
from badges.messages.bank_sync import (
    CONNECTION_GONE,
    CONSENT_MISSING,
    LOGIN_REQUIRED,
    PROVIDER_PAUSED,
    PROVIDER_REFUSED,
    ConnectionRef,
    MemberRef,
    StatusChange,
    SyncOutcome,
)
from badges.temporal import Client, end_bank_sync

PAGE_SIZE = 500
# What a member is told, once, when their provider's breaker pauses their connection's syncs.
PROVIDER_PAUSED_MESSAGE = (
    "Your bank's data is delayed: its provider is not answering. Nothing is needed from you; it catches up"
    " by itself, and badges that depend on it wait rather than decide on missing data."
)
REVOKE_ATTEMPTS = 5
HEARTBEAT_EVERY_SECONDS = 10.0
# A batch restarted this often because the provider's data kept changing mid-pagination is
# retried later as a whole (the activity fails, retryably).
MAX_BATCH_RESTARTS = 3
RATE_LIMIT_DELAY = timedelta(seconds=30)
# Transactions stored before categories existed, categorised per round by a connection's next sync.
BACKFILL_PAGE = 2000


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Heartbeat every few seconds while the block runs, however long one provider call or the
    batch's write takes: a short heartbeat timeout then means only "the worker died"."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def as_application_error(error: ProviderError) -> ApplicationError:
    if error.kind == "login_required":
        return ApplicationError(str(error), error.code, type=LOGIN_REQUIRED, non_retryable=True)
    if error.kind == "gone":
        return ApplicationError(str(error), error.code, type=CONNECTION_GONE, non_retryable=True)
    if error.kind == "invalid":
        return ApplicationError(str(error), error.code, type=PROVIDER_REFUSED, non_retryable=True)
    delay = RATE_LIMIT_DELAY if error.kind == "rate_limited" else None
    return ApplicationError(str(error), error.code, type=error.kind, next_retry_delay=delay)


async def categorised(
    categoriser: Categoriser, transactions: Sequence[Transaction | Uncategorised]
) -> list[Categorised]:
    """Each transaction's category (confident provider, else the model), off the event loop: the
    model's work for a whole history takes long enough to hold up heartbeats and other activities."""
    lines = [
        (
            t.description,
            t.merchant_name,
            t.amount_minor,
            t.category_detailed,
            t.category_primary,
            t.category_confidence_level,
            t.mcc,
        )
        for t in transactions
    ]
    if not lines:
        return []
    return await asyncio.to_thread(categorise, categoriser, lines)


@dataclass
class ProviderStats:
    """One provider's syncs as this worker saw them (for operators: `badges/metrics.py`)."""

    ok: int = 0
    failed: int = 0  # outages and rate limits, after which the provider's breaker counts
    paused: int = 0  # not attempted: the provider's breaker was open
    seconds: float = 0.0  # reading batches, ok or failed
    breaker_open: bool = False  # as this worker last found it


class ProviderHealth:
    """Per provider: syncs that went through, failed or were paused, their time, the breaker."""

    def __init__(self) -> None:
        self._by_provider: dict[str, ProviderStats] = {}

    def of(self, provider: str) -> ProviderStats:
        return self._by_provider.setdefault(provider, ProviderStats())

    def stats(self) -> dict[str, ProviderStats]:
        return {name: replace(stats) for name, stats in self._by_provider.items()}


class BankingActivities:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        keys: KeyStore,
        providers: dict[str, BankProvider],
        client: Client,
        categoriser: Categoriser,
        breaker: BreakerPolicy | None = None,
        health: ProviderHealth | None = None,
    ) -> None:
        self._pool = pool
        self._keys = keys
        self._providers = providers
        self._client = client
        self._categoriser = categoriser  # loaded once per worker process
        self._breaker = breaker or BreakerPolicy()
        self._health = health or ProviderHealth()

    @activity.defn
    async def sync_connection(self, ref: ConnectionRef) -> SyncOutcome:
        """Pull every page after the stored cursor, then apply the whole batch with its final
        cursor in one transaction. Nothing is stored until `has_more` is false, so a crash or a
        retry repeats the batch from the stored cursor: no row duplicated, none missed."""
        state = await connection_state(self._pool, self._keys, ref.connection_id)
        if state is None or state.status == "disconnected":
            raise ApplicationError("the connection no longer exists", type=CONNECTION_GONE, non_retryable=True)
        if not await has_consent(self._pool, state.user_id, "open_banking", datetime.now(UTC)):
            raise ApplicationError("no active open_banking consent", type=CONSENT_MISSING, non_retryable=True)
        provider = self._providers[state.provider]
        connection = str(state.id)
        health = self._health.of(state.provider)
        admission = await admit_sync(self._pool, state.provider, connection, datetime.now(UTC), self._breaker)
        if not admission.proceed and admission.paused_until is not None:
            health.paused += 1
            health.breaker_open = True
            wait = max(0.0, (admission.paused_until - datetime.now(UTC)).total_seconds())
            raise ApplicationError(
                f"{state.provider} is paused by its breaker", wait, type=PROVIDER_PAUSED, non_retryable=True
            )
        async with heartbeating():
            started = time.monotonic()
            try:
                batch = await self._read_batch(provider, state)
            except ProviderError as error:
                health.seconds += time.monotonic() - started
                if error.kind == "gone":
                    return await self._gone(state, error)
                if error.retryable:
                    health.failed += 1
                    now = datetime.now(UTC)
                    if await record_provider_failure(self._pool, state.provider, connection, now, self._breaker):
                        health.breaker_open = True
                raise as_application_error(error) from error
            health.seconds += time.monotonic() - started
            health.ok += 1
            health.breaker_open = False
            await record_provider_success(self._pool, state.provider, connection)
            categories = await categorised(self._categoriser, [*batch.added, *batch.modified])
            applied = await apply_sync_batch(self._pool, self._keys, state, batch, categories)
            if applied is not None:
                await self._categorise_stored(state)
        if applied is None:
            return SyncOutcome(applied=False)
        return SyncOutcome(
            applied=True,
            added=applied.added,
            modified=applied.modified,
            removed=applied.removed,
            first_date=applied.first_date,
            last_date=applied.last_date,
        )

    async def _categorise_stored(self, state: ConnectionState) -> None:
        """Categorise what the connection stored before categories existed (after an upgrade):
        opened once per row, here on the sync's batch path, never on a member's request."""
        while found := await uncategorised_transactions(self._pool, self._keys, state.id, BACKFILL_PAGE):
            categories = await categorised(self._categoriser, found)
            await store_categories(self._pool, self._keys, state, found, categories)
            if len(found) < BACKFILL_PAGE:
                return

    async def _read_batch(self, provider: BankProvider, state: ConnectionState) -> SyncBatch:
        """Every page after the stored cursor, restarting when the provider's data moves under us."""
        restarts = 0
        token = state.access_token
        while True:
            added: list[Transaction] = []
            modified: list[Transaction] = []
            removed: list[str] = []
            accounts: list[Account] = []
            cursor = state.cursor
            try:
                while True:
                    page = await provider.sync_page(token, cursor, PAGE_SIZE)
                    if page.access_token is not None:  # refreshed: the old ones may be dead already
                        token = page.access_token
                        await store_credentials(self._pool, self._keys, state, token)
                    added += page.added
                    modified += page.modified
                    removed += page.removed
                    accounts = page.accounts or accounts
                    cursor = page.next_cursor
                    if not page.has_more:
                        return SyncBatch(added, modified, removed, accounts, next_cursor=cursor or "")
            except ProviderError as error:
                if error.kind == "mutation_during_pagination" and restarts < MAX_BATCH_RESTARTS:
                    restarts += 1
                    continue
                raise

    async def _gone(self, state: ConnectionState, error: ProviderError) -> SyncOutcome:
        """The provider no longer knows this token. If our connection moved on meanwhile (re-linked
        to a new item, or being disconnected), this sync is simply superseded; otherwise the
        member must link again: login_required, never a silent deletion."""
        now = await connection_state(self._pool, self._keys, state.id)
        if now is None or now.status == "disconnected":
            raise ApplicationError("the connection no longer exists", type=CONNECTION_GONE, non_retryable=True)
        if now.item_id != state.item_id:
            return SyncOutcome(applied=False)
        raise ApplicationError(str(error), error.code, type=LOGIN_REQUIRED, non_retryable=True)

    @activity.defn
    async def record_status(self, change: StatusChange) -> None:
        """Set the connection's status; a change reaches the member's stream as an insight."""
        async with self._pool.connection() as connection, connection.transaction():
            before = await set_status(connection, change.connection_id, change.status, change.error)
            if before is not None and before.previous != change.status:
                insight = {
                    "type": "bank_connection",
                    "connectionId": str(change.connection_id),
                    "status": change.status,
                }
                if change.error == PROVIDER_PAUSED:
                    insight |= {"reason": "provider_unavailable", "message": PROVIDER_PAUSED_MESSAGE}
                await append_insight(connection, before.user_id, insight)

    @activity.defn
    async def disconnect_connection(self, ref: ConnectionRef) -> None:
        """Revoke the item at the provider, then delete the connection and everything it brought.
        Idempotent: a connection already gone is done."""
        state = await connection_state(self._pool, self._keys, ref.connection_id)
        if state is None:
            return
        await self._revoke(state)
        await delete_connection(self._pool, ref.connection_id)

    async def _revoke(self, state: ConnectionState) -> None:
        """Revoke our access at the provider. An outage is retried (the activity fails) for the
        first `REVOKE_ATTEMPTS` attempts; after that, or when the provider refuses, the failure
        is audited and the deletion goes ahead: a provider must never keep a member's data here
        (or their erasure) waiting. The item then lapses at the provider's side only."""
        try:
            await self._providers[state.provider].remove(state.access_token)
        except ProviderError as error:
            if error.retryable and activity.info().attempt < REVOKE_ATTEMPTS:
                raise as_application_error(error) from error
            async with self._pool.connection() as connection, connection.transaction():
                await append_audit(
                    connection,
                    actor="system",
                    actor_role="system",
                    action="bank.revoke_failed",
                    subject=state.user_id,
                    resource=f"bank/{state.id}",
                    purpose="disconnecting a bank connection",
                    details={"provider": state.provider, "code": error.code},
                )

    @activity.defn
    async def disconnect_member(self, ref: MemberRef) -> int:
        """Every connection of the member: sync stopped, item revoked at the provider, data
        deleted (consent to open banking ended, or the member is being erased). Returns how many."""
        ids = await member_connection_ids(self._pool, ref.user_id)
        for connection_id in ids:
            activity.heartbeat(str(connection_id))
            async with self._pool.connection() as connection, connection.transaction():
                await set_status(connection, connection_id, "disconnected")  # no sync applies from now on
            await end_bank_sync(self._client, connection_id, "open banking ended for the member")
            await self.disconnect_connection(ConnectionRef(connection_id=connection_id))
        return len(ids)
