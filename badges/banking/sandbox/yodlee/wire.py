"""The shared histories' accounts and transactions in Yodlee's shape (API v1.1): amounts always
positive with `baseType` DEBIT or CREDIT, Yodlee's master `category` with its `categoryType`,
the merchant's `categoryLabel`, numeric ids derived from the records' own. The same record always
renders the same way."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from badges.banking.sandbox.records import Account, Transaction
from badges.banking.sandbox.yodlee.institutions import PROVIDER

# The shared category (Plaid's taxonomy) as Yodlee's master category, its type and the merchant's
# category labels: by detailed category, else by primary.
_CATEGORIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "FOOD_AND_DRINK_FAST_FOOD": ("Restaurants", "EXPENSE", ("Fast Food",)),
    "FOOD_AND_DRINK_GROCERIES": ("Groceries", "EXPENSE", ("Supermarkets",)),
    "FOOD_AND_DRINK_RESTAURANT": ("Restaurants", "EXPENSE", ("Restaurants",)),
    "FOOD_AND_DRINK_COFFEE": ("Restaurants", "EXPENSE", ("Coffee Shops",)),
    "ENTERTAINMENT_CASINOS_AND_GAMBLING": ("Entertainment/Recreation", "EXPENSE", ("Gambling",)),
    "RENT_AND_UTILITIES_RENT": ("Rent", "EXPENSE", ()),
    "RENT_AND_UTILITIES_TELEPHONE": ("Telephone Services", "EXPENSE", ()),
    "RENT_AND_UTILITIES_INTERNET_AND_CABLE": ("Cable/Satellite Services", "EXPENSE", ()),
    "INCOME_WAGES": ("Salary/Regular Income", "INCOME", ()),
    "INCOME_INTEREST_EARNED": ("Interest Income", "INCOME", ()),
    "INCOME_OTHER_INCOME": ("Other Income", "INCOME", ()),
    "TRANSFER_IN_SAVINGS": ("Savings", "TRANSFER", ()),
    "TRANSFER_OUT_SAVINGS": ("Savings", "TRANSFER", ()),
    "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT": ("Credit Card Payments", "TRANSFER", ()),
    "GOVERNMENT_AND_NON_PROFIT_TAX_PAYMENT": ("Taxes", "EXPENSE", ()),
    "TRANSPORTATION_GAS": ("Gasoline/Fuel", "EXPENSE", ()),
    "TRAVEL_FLIGHTS": ("Travel", "EXPENSE", ("Airlines",)),
    "TRAVEL_LODGING": ("Travel", "EXPENSE", ("Hotels",)),
    "GENERAL_MERCHANDISE_CLOTHING_AND_ACCESSORIES": ("Clothing/Shoes", "EXPENSE", ()),
}
_BY_PRIMARY: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "FOOD_AND_DRINK": ("Restaurants", "EXPENSE", ()),
    "ENTERTAINMENT": ("Entertainment/Recreation", "EXPENSE", ()),
    "RENT_AND_UTILITIES": ("Utilities", "EXPENSE", ()),
    "GENERAL_MERCHANDISE": ("Electronics/General Merchandise", "EXPENSE", ()),
    "GENERAL_SERVICES": ("Services/Supplies", "EXPENSE", ()),
    "PERSONAL_CARE": ("Personal/Family", "EXPENSE", ()),
    "TRANSPORTATION": ("Automotive Expenses", "EXPENSE", ()),
    "TRAVEL": ("Travel", "EXPENSE", ()),
    "MEDICAL": ("Healthcare/Medical", "EXPENSE", ()),
    "INCOME": ("Other Income", "INCOME", ()),
    "TRANSFER_IN": ("Transfers", "TRANSFER", ()),
    "TRANSFER_OUT": ("Transfers", "TRANSFER", ()),
    "LOAN_PAYMENTS": ("Loans", "EXPENSE", ()),
}
_UNCATEGORISED = ("Uncategorized", "UNCATEGORIZE", ())


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def number(shared_id: str) -> int:
    """A shared record's id as a Yodlee-looking numeric id, the same every time."""
    return 10_000_000 + int(_digest(shared_id)[:12], 16) % 9_000_000_000


@dataclass
class Entry:
    """One transaction as the sandbox bank holds it; rendered in Yodlee's shape."""

    id: int
    account_id: int
    day: date
    description: str
    amount: Decimal  # positive; `debit` says which way the money went
    debit: bool
    category: str
    category_type: str
    labels: tuple[str, ...] = ()
    merchant_name: str | None = None
    pending: bool = False

    @property
    def signed(self) -> Decimal:
        """Money in positive, money out negative (for balances)."""
        return -self.amount if self.debit else self.amount

    def render(self, currency: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": self.id,
            "CONTAINER": "bank",
            "accountId": self.account_id,
            "amount": {"amount": float(self.amount), "currency": currency},
            "baseType": "DEBIT" if self.debit else "CREDIT",
            "categoryType": self.category_type,
            "category": self.category,
            "categorySource": "SYSTEM",
            "description": {"original": self.description, "simple": self.merchant_name or self.description},
            "date": self.day.isoformat(),
            "transactionDate": self.day.isoformat(),
            "postDate": None if self.pending else self.day.isoformat(),
            "status": "PENDING" if self.pending else "POSTED",
            "isManual": False,
        }
        if self.merchant_name:
            item["merchant"] = {"name": self.merchant_name, "categoryLabel": list(self.labels)}
        return item


def accounts(checking: Account, savings: Account, provider_account_id: int, currency: str) -> list[dict[str, Any]]:
    """Yodlee account resources (container `bank`), checking then savings, masked numbers."""

    def resource(account: Account, kind: str) -> dict[str, Any]:
        return {
            "id": number(account.account_id),
            "CONTAINER": "bank",
            "accountType": kind,
            "accountName": account.name,
            "accountNumber": f"xxxx{account.mask}",
            "accountStatus": "ACTIVE",
            "providerAccountId": provider_account_id,
            "providerId": PROVIDER["id"],
            "providerName": PROVIDER["name"],
            "currency": currency,
        }

    return [resource(checking, "CHECKING"), resource(savings, "SAVINGS")]


def entry(transaction: Transaction) -> Entry:
    """A shared transaction as Yodlee reports it (a pending one dated the day it was authorised)."""
    category, kind, labels = (
        _CATEGORIES.get(transaction.category.detailed)
        or _BY_PRIMARY.get(transaction.category.primary)
        or _UNCATEGORISED
    )
    return Entry(
        id=number(transaction.transaction_id),
        account_id=number(transaction.account_id),
        day=transaction.date,
        description=transaction.name,
        amount=abs(Decimal(str(transaction.amount))).quantize(Decimal("0.01")),
        debit=transaction.amount > 0,  # the shared records' sign is Plaid's: positive is money out
        category=category,
        category_type=kind,
        labels=labels,
        merchant_name=transaction.merchant_name,
        pending=transaction.pending,
    )
