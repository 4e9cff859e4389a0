"""Request bodies the Yodlee sandbox reads: Yodlee's user registration and the sandbox's own controls."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel


class RegisteredUser(BaseModel):
    loginName: str


class RegisterRequest(BaseModel):
    user: RegisteredUser


# The sandbox's own endpoints (not Yodlee's)


class NewTransaction(BaseModel):
    """A transaction added to a provider account by a test: our sign (negative for money out)."""

    account: str = "checking"  # "checking", "savings" or an account id
    description: str
    amount: Decimal
    date: dt.date | None = None
    category: str = "Other Expenses"
    category_type: str = "EXPENSE"
    labels: list[str] = []
    merchant_name: str | None = None
    pending: bool = False


class NewTransactions(BaseModel):
    transactions: list[NewTransaction]


class FaultRequest(BaseModel):
    status: int | None = None
    count: int | None = 1  # null: until DELETE /_sandbox/faults
    delay_seconds: float = 0.0


class LoginRequired(BaseModel):
    additional_status: str = "INCORRECT_CREDENTIALS"
