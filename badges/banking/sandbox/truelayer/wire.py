"""The shared histories' accounts and transactions in TrueLayer's shape (Data API v1): money out
negative, one timestamp per transaction, TrueLayer's `transaction_category`, `transaction_classification`
and provider codes, TrueLayer-looking ids. The same record always renders the same way."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from random import Random
from typing import Any

from badges.banking.sandbox.records import Account, Transaction
from badges.banking.sandbox.truelayer.institutions import PROVIDER

# The shared category (Plaid's taxonomy) as TrueLayer's classification ([top, sub], Mint-like):
# by detailed category, else by primary; income, transfers and card repayments are unclassified,
# as at TrueLayer (their `transaction_category` says what they are).
_CLASSIFICATIONS: dict[str, tuple[str, ...]] = {
    "FOOD_AND_DRINK_FAST_FOOD": ("Food & Dining", "Fast Food"),
    "FOOD_AND_DRINK_GROCERIES": ("Food & Dining", "Groceries"),
    "FOOD_AND_DRINK_RESTAURANT": ("Food & Dining", "Restaurants"),
    "FOOD_AND_DRINK_COFFEE": ("Food & Dining", "Coffee shops"),
    "ENTERTAINMENT_CASINOS_AND_GAMBLING": ("Entertainment", "Gambling"),
    "ENTERTAINMENT_TV_AND_MOVIES": ("Entertainment", "Movies & DVDs"),
    "ENTERTAINMENT_MUSIC_AND_AUDIO": ("Entertainment", "Music"),
    "RENT_AND_UTILITIES_RENT": ("Home", "Mortgage & Rent"),
    "PERSONAL_CARE_GYMS_AND_FITNESS_CENTERS": ("Health & Fitness", "Gym"),
    "GOVERNMENT_AND_NON_PROFIT_TAX_PAYMENT": ("Taxes", "Local Tax"),
    "GENERAL_MERCHANDISE_CLOTHING_AND_ACCESSORIES": ("Shopping", "Clothing"),
    "TRAVEL_FLIGHTS": ("Travel", "Air Travel"),
    "TRAVEL_LODGING": ("Travel", "Hotel"),
}
_CLASSIFICATIONS_BY_PRIMARY: dict[str, tuple[str, ...]] = {
    "FOOD_AND_DRINK": ("Food & Dining",),
    "ENTERTAINMENT": ("Entertainment",),
    "RENT_AND_UTILITIES": ("Bills and Utilities",),
    "GENERAL_MERCHANDISE": ("Shopping",),
    "GENERAL_SERVICES": ("Shopping",),
    "TRANSPORTATION": ("Auto & Transport",),
    "TRAVEL": ("Travel",),
    "PERSONAL_CARE": ("Personal Care",),
    "MEDICAL": ("Health & Fitness",),
}
_DIRECT_DEBITS = ("RENT_AND_UTILITIES", "LOAN_PAYMENTS", "GOVERNMENT_AND_NON_PROFIT")


@dataclass
class Posting:
    """One transaction as the sandbox bank holds it; rendered in TrueLayer's shape."""

    transaction_id: str
    account_id: str
    timestamp: datetime
    description: str
    amount: Decimal  # TrueLayer's sign: negative for money out
    transaction_category: str
    classification: list[str]
    merchant_name: str | None = None
    provider_category: str = "POS"

    def render(self, currency: str, running_balance: Decimal | None) -> dict[str, Any]:
        item: dict[str, Any] = {
            "transaction_id": self.transaction_id,
            "normalised_provider_transaction_id": f"txn-{self.transaction_id[:20]}",
            "provider_transaction_id": self.transaction_id[::-1][:24],
            "timestamp": self.timestamp.isoformat(),
            "description": self.description,
            "amount": float(self.amount),
            "currency": currency,
            "transaction_type": "DEBIT" if self.amount < 0 else "CREDIT",
            "transaction_category": self.transaction_category,
            "transaction_classification": self.classification,
            "meta": {
                "provider_category": self.provider_category,
                "provider_transaction_category": self.provider_category,
            },
        }
        if self.merchant_name:
            item["merchant_name"] = self.merchant_name
        if running_balance is not None:
            item["running_balance"] = {"amount": float(running_balance), "currency": currency}
        return item


def hex_id(rng: Random) -> str:
    """A new TrueLayer-looking id (32 hex digits)."""
    return f"{rng.getrandbits(128):032x}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def identifier(shared_id: str) -> str:
    """A shared record's id as a TrueLayer-looking one, the same every time."""
    return _digest(shared_id)[:32]


def accounts(checking: Account, savings: Account, currency: str, today: date) -> list[dict[str, Any]]:
    """TrueLayer account resources, current then savings: one sort code, account numbers ending in the mask."""
    digits = _digest(checking.account_id)
    sort_code = "-".join(f"{10 + int(digits[i : i + 2], 16) % 90}" for i in (0, 2, 4))
    updated = datetime.combine(today, time.min, UTC).isoformat()

    def resource(account: Account, kind: str) -> dict[str, Any]:
        number = f"{int(_digest(account.account_id)[:8], 16) % 10_000:04d}{account.mask}"
        check = 10 + int(_digest(account.account_id)[8:10], 16) % 90
        return {
            "update_timestamp": updated,
            "account_id": identifier(account.account_id),
            "account_type": kind,
            "display_name": account.name,
            "currency": currency,
            "account_number": {
                "iban": f"GB{check}MOCK{sort_code.replace('-', '')}{number}",
                "number": number,
                "sort_code": sort_code,
                "swift_bic": "MOCKGB21",
            },
            "provider": PROVIDER,
        }

    return [resource(checking, "TRANSACTION"), resource(savings, "SAVINGS")]


def posting(transaction: Transaction) -> Posting:
    """A shared transaction as TrueLayer reports it: dated its posting day (a pending one, the day
    it was authorised) at a time of day between 06:00 and 22:00."""
    digits = _digest(transaction.transaction_id)
    minutes = 6 * 60 + int(digits[32:40], 16) % (16 * 60)
    category, code = _kind(transaction)
    detailed = transaction.category.detailed
    classification = _CLASSIFICATIONS.get(detailed) or _CLASSIFICATIONS_BY_PRIMARY.get(transaction.category.primary)
    return Posting(
        transaction_id=digits[:32],  # identifier(transaction.transaction_id)
        account_id=identifier(transaction.account_id),
        timestamp=datetime.combine(transaction.date, time.min, UTC) + timedelta(minutes=minutes),
        description=transaction.name,
        amount=-Decimal(str(transaction.amount)).quantize(Decimal("0.01")),
        transaction_category=category,
        classification=list(classification or ()),
        merchant_name=transaction.merchant_name,
        provider_category=code,
    )


def _kind(transaction: Transaction) -> tuple[str, str]:
    """TrueLayer's `transaction_category` and the bank's own code for a shared transaction."""
    primary, detailed = transaction.category.primary, transaction.category.detailed
    if detailed == "INCOME_INTEREST_EARNED":
        return "INTEREST", "INT"
    if primary == "INCOME":
        return "CREDIT", "BGC"
    if primary in ("TRANSFER_IN", "TRANSFER_OUT"):
        return "TRANSFER", "TFR"
    if detailed == "RENT_AND_UTILITIES_RENT":
        return "STANDING_ORDER", "SO"
    if primary in _DIRECT_DEBITS:
        return "DIRECT_DEBIT", "DD"
    return ("PURCHASE" if transaction.amount > 0 else "CREDIT"), "POS"
