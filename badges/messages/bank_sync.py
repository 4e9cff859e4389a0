"""What crosses Temporal around `BankSyncWorkflow`: its input and state, its activities'
arguments and results, and the `ApplicationError` types the workflow reacts to."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel

DEFAULT_INTERVAL = timedelta(hours=6)

# ApplicationError types the workflow reacts to (non-retryable: retrying cannot help).
LOGIN_REQUIRED = "LoginRequired"
CONSENT_MISSING = "ConsentMissing"
CONNECTION_GONE = "ConnectionGone"
PROVIDER_REFUSED = "ProviderRefused"
# The provider's breaker is open: the sync did not call it. Details: [seconds until it may try again].
PROVIDER_PAUSED = "ProviderPaused"

Status = Literal["syncing", "active", "degraded", "login_required", "disconnected"]


class BankSyncInput(BaseModel):
    connection_id: uuid.UUID
    user_id: uuid.UUID
    interval_seconds: float = DEFAULT_INTERVAL.total_seconds()
    # Carried across continue-as-new:
    failures: int = 0  # consecutive failed syncs (the breaker)
    login_required: bool = False
    sync_requested: bool = True  # the first run syncs at once
    provider_paused: bool = False  # paused by the provider's breaker (the member was told)


class ConnectionRef(BaseModel):
    connection_id: uuid.UUID


class SyncOutcome(BaseModel):
    applied: bool  # False: another run had applied this batch already
    added: int = 0
    modified: int = 0
    removed: int = 0
    first_date: date | None = None
    last_date: date | None = None


class BankSyncState(BaseModel):
    status: str
    failures: int
    syncs: int
    last: SyncOutcome | None


class StatusChange(BaseModel):
    connection_id: uuid.UUID
    status: Status
    error: str | None = None


class MemberRef(BaseModel):
    """A member whose every bank connection is to be disconnected (`disconnect_member`)."""

    user_id: uuid.UUID
