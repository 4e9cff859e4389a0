"""The shared histories' accounts and transactions in Plaid's shape, with every field plaid-python's models require."""

from __future__ import annotations

from typing import Any

from badges.banking.sandbox.catalogue import US
from badges.banking.sandbox.records import Account, Transaction

CURRENCY = US.currency  # Plaid's sandbox is set in the United States

_NO_LOCATION = dict.fromkeys(("address", "city", "region", "postal_code", "country", "lat", "lon", "store_number"))
_NO_PAYMENT_META = dict.fromkeys(
    ("reference_number", "ppd_id", "payee", "by_order_of", "payer", "payment_method", "payment_processor", "reason")
)
_ICON_URL = "https://plaid-category-icons.plaid.com/PFC_{}.png"


def account(account: Account, posted_total: float, pending_total: float) -> dict[str, Any]:
    """`posted_total`/`pending_total`: sums of this account's transaction amounts (money out positive)."""
    current = round(account.opening_balance - posted_total, 2)
    return {
        "account_id": account.account_id,
        "balances": {
            "available": round(current - pending_total, 2),
            "current": current,
            "limit": None,
            "iso_currency_code": CURRENCY,
            "unofficial_currency_code": None,
        },
        "mask": account.mask,
        "name": account.name,
        "official_name": account.official_name,
        "type": "depository",
        "subtype": account.subtype,
        "persistent_account_id": account.account_id,
    }


def transaction(transaction: Transaction, include_original_description: bool) -> dict[str, Any]:
    counterparties = []
    if transaction.merchant_name and transaction.counterparty_type:
        counterparties.append(
            {
                "name": transaction.merchant_name,
                "type": transaction.counterparty_type,
                "website": transaction.website,
                "logo_url": None,
                "entity_id": None,
                "confidence_level": "HIGH",
            }
        )
    return {
        "transaction_id": transaction.transaction_id,
        "account_id": transaction.account_id,
        "account_owner": None,
        "amount": transaction.amount,
        "iso_currency_code": CURRENCY,
        "unofficial_currency_code": None,
        "date": transaction.date.isoformat(),
        "datetime": None,
        "authorized_date": transaction.authorized_date.isoformat(),
        "authorized_datetime": None,
        "name": transaction.name,
        "merchant_name": transaction.merchant_name,
        "merchant_entity_id": None,
        "merchant_category_code": transaction.mcc,
        "original_description": transaction.name if include_original_description else None,
        "pending": transaction.pending,
        "pending_transaction_id": transaction.pending_transaction_id,
        "payment_channel": transaction.payment_channel,
        "transaction_type": "place" if transaction.payment_channel == "in store" else "special",
        "transaction_code": None,
        "category": None,
        "category_id": None,
        "check_number": None,
        "location": _NO_LOCATION,
        "payment_meta": _NO_PAYMENT_META,
        "logo_url": None,
        "website": transaction.website,
        "personal_finance_category": {
            "primary": transaction.category.primary,
            "detailed": transaction.category.detailed,
            "confidence_level": "VERY_HIGH" if transaction.mcc else "HIGH",
            "version": "v2",
        },
        "personal_finance_category_icon_url": _ICON_URL.format(transaction.category.primary),
        "counterparties": counterparties,
    }
