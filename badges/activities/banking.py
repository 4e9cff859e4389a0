"""What bank sync needs done in the world: pull a complete batch from the provider and apply it
with its cursor, record connection status changes (and tell the member), disconnect at the
provider and delete what the connection brought."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from badges.banking.provider import BankProvider, ProviderError
from badges.db.banking import (
    apply_batch,
    connection_state,
    delete_connection,
    member_connection_ids,
    set_status,
)
from badges.db.consents import has_consent
from badges.db.keys import KeyStore
from badges.db.outbox import append_insight
from badges.domain.banking import Account, Transaction
from badges.domain.identity import bank_sync_workflow_id

PAGE_SIZE = 500
# A batch restarted this often because the provider's data kept changing mid-pagination is
# retried later as a whole (the activity fails, retryably).
MAX_BATCH_RESTARTS = 3

# ApplicationError types the workflow reacts to (non-retryable: retrying cannot help).
LOGIN_REQUIRED = "LoginRequired"
CONSENT_MISSING = "ConsentMissing"
CONNECTION_GONE = "ConnectionGone"
PROVIDER_REFUSED = "ProviderRefused"
RATE_LIMIT_DELAY = timedelta(seconds=30)

Status = Literal["syncing", "active", "degraded", "login_required", "disconnected"]


class ConnectionRef(BaseModel):
    connection_id: uuid.UUID


class SyncOutcome(BaseModel):
    applied: bool  # False: another run had applied this batch already
    added: int = 0
    modified: int = 0
    removed: int = 0
    first_date: date | None = None
    last_date: date | None = None


class StatusChange(BaseModel):
    connection_id: uuid.UUID
    status: Status
    error: str | None = None


class MemberRef(BaseModel):
    user_id: uuid.UUID


def as_application_error(error: ProviderError) -> ApplicationError:
    if error.kind == "login_required":
        return ApplicationError(str(error), error.code, type=LOGIN_REQUIRED, non_retryable=True)
    if error.kind == "gone":
        return ApplicationError(str(error), error.code, type=CONNECTION_GONE, non_retryable=True)
    if error.kind == "invalid":
        return ApplicationError(str(error), error.code, type=PROVIDER_REFUSED, non_retryable=True)
    delay = RATE_LIMIT_DELAY if error.kind == "rate_limited" else None
    return ApplicationError(str(error), error.code, type=error.kind, next_retry_delay=delay)


class BankingActivities:
    def __init__(
        self, pool: AsyncConnectionPool, keys: KeyStore, providers: dict[str, BankProvider], client: Client
    ) -> None:
        self._pool = pool
        self._keys = keys
        self._providers = providers
        self._client = client

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
        restarts = 0
        while True:
            added: list[Transaction] = []
            modified: list[Transaction] = []
            removed: list[str] = []
            accounts: list[Account] = []
            cursor = state.cursor
            token = state.access_token
            refreshed: str | None = None
            try:
                while True:
                    page = await provider.sync_page(token, cursor, PAGE_SIZE)
                    if page.access_token is not None:
                        token = refreshed = page.access_token
                    added += page.added
                    modified += page.modified
                    removed += page.removed
                    accounts = page.accounts or accounts
                    cursor = page.next_cursor
                    activity.heartbeat(len(added) + len(modified) + len(removed))
                    if not page.has_more:
                        break
            except ProviderError as error:
                if error.kind == "mutation_during_pagination" and restarts < MAX_BATCH_RESTARTS:
                    restarts += 1  # the provider's data moved under us: the batch starts again
                    continue
                raise as_application_error(error) from error
            break
        applied = await apply_batch(
            self._pool,
            self._keys,
            state,
            added=added,
            modified=modified,
            removed=removed,
            accounts=accounts,
            next_cursor=cursor or "",
            access_token=refreshed,
        )
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

    @activity.defn
    async def record_status(self, change: StatusChange) -> None:
        """Set the connection's status; a change reaches the member's stream as an insight."""
        async with self._pool.connection() as connection, connection.transaction():
            before = await set_status(connection, change.connection_id, change.status, change.error)
            if before is not None and before[1] != change.status:
                await append_insight(
                    connection,
                    before[0],
                    {"type": "bank_connection", "connectionId": str(change.connection_id), "status": change.status},
                )

    @activity.defn
    async def disconnect_connection(self, ref: ConnectionRef) -> None:
        """Revoke the item at the provider, then delete the connection and everything it brought.
        Idempotent: a connection already gone is done."""
        state = await connection_state(self._pool, self._keys, ref.connection_id)
        if state is None:
            return
        try:
            await self._providers[state.provider].remove(state.access_token)
        except ProviderError as error:
            raise as_application_error(error) from error
        await delete_connection(self._pool, ref.connection_id)

    @activity.defn
    async def disconnect_member(self, ref: MemberRef) -> int:
        """Every connection of the member: sync stopped, item revoked at the provider, data
        deleted (consent to open banking ended, or the member is being erased). Returns how many."""
        ids = await member_connection_ids(self._pool, ref.user_id)
        for connection_id in ids:
            activity.heartbeat(str(connection_id))
            async with self._pool.connection() as connection, connection.transaction():
                await set_status(connection, connection_id, "disconnected")  # no sync applies from now on
            try:
                await self._client.get_workflow_handle(bank_sync_workflow_id(connection_id)).terminate(
                    reason="open banking ended for the member"
                )
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
            await self.disconnect_connection(ConnectionRef(connection_id=connection_id))
        return len(ids)
