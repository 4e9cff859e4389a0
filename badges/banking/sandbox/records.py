"""Accounts and transactions as the sandbox holds them, and their shape on Plaid's wire.

Amounts follow Plaid's sign convention: positive is money leaving the account.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from badges.banking.sandbox.catalogue import Category

CURRENCY = "USD"
_NO_LOCATION = dict.fromkeys(("address", "city", "region", "postal_code", "country", "lat", "lon", "store_number"))
_NO_PAYMENT_META = dict.fromkeys(
    ("reference_number", "ppd_id", "payee", "by_order_of", "payer", "payment_method", "payment_processor", "reason")
)
_ICON_URL = "https://plaid-category-icons.plaid.com/PFC_{}.png"


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    name: str
    official_name: str
    subtype: str  # "checking" | "savings"
    mask: str
    opening_balance: float

    def to_plaid(self, posted_total: float, pending_total: float) -> dict[str, Any]:
        """`posted_total`/`pending_total`: sums of this account's transaction amounts (money out positive)."""
        current = round(self.opening_balance - posted_total, 2)
        return {
            "account_id": self.account_id,
            "balances": {
                "available": round(current - pending_total, 2),
                "current": current,
                "limit": None,
                "iso_currency_code": CURRENCY,
                "unofficial_currency_code": None,
            },
            "mask": self.mask,
            "name": self.name,
            "official_name": self.official_name,
            "type": "depository",
            "subtype": self.subtype,
            "persistent_account_id": self.account_id,
        }


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

    def to_plaid(self, include_original_description: bool) -> dict[str, Any]:
        counterparties = []
        if self.merchant_name and self.counterparty_type:
            counterparties.append(
                {
                    "name": self.merchant_name,
                    "type": self.counterparty_type,
                    "website": self.website,
                    "logo_url": None,
                    "entity_id": None,
                    "confidence_level": "HIGH",
                }
            )
        return {
            "transaction_id": self.transaction_id,
            "account_id": self.account_id,
            "account_owner": None,
            "amount": self.amount,
            "iso_currency_code": CURRENCY,
            "unofficial_currency_code": None,
            "date": self.date.isoformat(),
            "datetime": None,
            "authorized_date": self.authorized_date.isoformat(),
            "authorized_datetime": None,
            "name": self.name,
            "merchant_name": self.merchant_name,
            "merchant_entity_id": None,
            "merchant_category_code": self.mcc,
            "original_description": self.name if include_original_description else None,
            "pending": self.pending,
            "pending_transaction_id": self.pending_transaction_id,
            "payment_channel": self.payment_channel,
            "transaction_type": "place" if self.payment_channel == "in store" else "special",
            "transaction_code": None,
            "category": None,
            "category_id": None,
            "check_number": None,
            "location": _NO_LOCATION,
            "payment_meta": _NO_PAYMENT_META,
            "logo_url": None,
            "website": self.website,
            "personal_finance_category": {
                "primary": self.category.primary,
                "detailed": self.category.detailed,
                "confidence_level": "VERY_HIGH" if self.mcc else "HIGH",
                "version": "v2",
            },
            "personal_finance_category_icon_url": _ICON_URL.format(self.category.primary),
            "counterparties": counterparties,
        }
