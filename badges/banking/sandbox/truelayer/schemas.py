"""Request bodies the TrueLayer sandbox reads: TrueLayer's `reauthuri` and the sandbox's own controls."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel


class ReauthRequest(BaseModel):
    response_type: str = "code"
    client_id: str
    redirect_uri: str
    refresh_token: str
    state: str | None = None
    client_secret: str | None = None


# The sandbox's own endpoints (not TrueLayer's)


class NewTransaction(BaseModel):
    """A transaction added to a connection by a test (TrueLayer's fields, our account alias)."""

    account: str = "current"  # "current", "savings" or an account id
    description: str
    amount: Decimal  # negative for money out, as TrueLayer
    timestamp: datetime | None = None
    transaction_category: str = "PURCHASE"
    transaction_classification: list[str] = []
    merchant_name: str | None = None
    pending: bool = False


class NewTransactions(BaseModel):
    transactions: list[NewTransaction]


class FaultRequest(BaseModel):
    status: int | None = None
    count: int = 1
    delay_seconds: float = 0.0
