"""Accounts and transactions as the generated histories hold them; each provider renders them in its own shape.

Amounts are in the history's currency (its market's) and follow Plaid's sign convention: positive
is money leaving the account.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from badges.banking.sandbox.catalogue import Category


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    name: str
    official_name: str
    subtype: str  # "checking" | "savings"
    mask: str
    opening_balance: float


@dataclass(frozen=True, slots=True)
class Transaction:
    transaction_id: str
    account_id: str
    amount: float
    date: dt.date  # posting date (for a pending transaction: the day it was authorised)
    authorized_date: dt.date
    name: str  # the statement descriptor
    merchant_name: str | None
    category: Category
    payment_channel: str  # "online" | "in store" | "other"
    pending: bool = False
    pending_transaction_id: str | None = None
    mcc: str | None = None
    counterparty_type: str | None = None
    website: str | None = None
