"""Bank data as the programme holds it, whichever provider it came from. Pure.

Amounts are integer minor units, positive for money into the account, negative for money out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

ProviderName = Literal["plaid", "truelayer", "yodlee"]

# The primary categories of Plaid's `personal_finance_category` (v2), the taxonomy transactions
# are held in whichever provider they came from; a detailed category is its primary plus a suffix.
CATEGORY_PRIMARIES = (
    "INCOME",
    "TRANSFER_IN",
    "TRANSFER_OUT",
    "LOAN_PAYMENTS",
    "BANK_FEES",
    "ENTERTAINMENT",
    "FOOD_AND_DRINK",
    "GENERAL_MERCHANDISE",
    "HOME_IMPROVEMENT",
    "MEDICAL",
    "PERSONAL_CARE",
    "GENERAL_SERVICES",
    "GOVERNMENT_AND_NON_PROFIT",
    "TRANSPORTATION",
    "TRAVEL",
    "RENT_AND_UTILITIES",
)


def primary_category(detailed: str | None) -> str | None:
    """The primary category a detailed one belongs to (None when it belongs to none)."""
    if not detailed:
        return None
    return next((prefix for prefix in CATEGORY_PRIMARIES if detailed.startswith(prefix + "_")), None)


@dataclass(frozen=True)
class LinkStart:
    """What the client needs to open the provider's link flow: a Plaid link token, or a
    TrueLayer authorisation URL, with the OAuth `state` it carries (which the redirect echoes
    back: the caller binds it to the member who started)."""

    link_token: str | None
    auth_url: str | None
    expires_at: datetime | None
    state: str | None = None


@dataclass(frozen=True)
class Exchanged:
    access_token: str
    item_id: str
    institution_id: str | None
    institution_name: str | None = None


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    mask: str | None
    type: str
    subtype: str | None
    currency: str
    balance_minor: int | None


@dataclass(frozen=True)
class Transaction:
    transaction_id: str
    account_id: str
    amount_minor: int  # positive: money in; negative: money out
    currency: str
    posted_date: date
    authorized_date: date | None
    description: str
    merchant_name: str | None
    category_primary: str | None
    category_detailed: str | None
    pending: bool
    pending_transaction_id: str | None
    # How sure the provider is of its category: Plaid's `personal_finance_category.confidence_level`
    # (VERY_HIGH, HIGH, MEDIUM, LOW, UNKNOWN); for TrueLayer, how exactly its classification mapped.
    category_confidence_level: str | None = None
    mcc: str | None = None  # the merchant category code (ISO 18245), where the provider gives one


@dataclass(frozen=True)
class SyncPage:
    added: list[Transaction]
    modified: list[Transaction]
    removed: list[str]
    accounts: list[Account]
    next_cursor: str
    has_more: bool
    # New credentials when the provider refreshed them during this call (TrueLayer's access
    # tokens live an hour): stored, sealed, with the batch. None: unchanged (Plaid).
    access_token: str | None = None


@dataclass(frozen=True)
class WebhookNotice:
    """A verified provider webhook, reduced to what we act on."""

    item_id: str
    kind: str  # e.g. TRANSACTIONS.SYNC_UPDATES_AVAILABLE, ITEM.ERROR
    details: dict[str, object] = field(default_factory=dict)


def to_minor(amount: float | Decimal | str, *, money_out_positive: bool) -> int:
    """A decimal amount in major units as signed minor units in our convention (exact: through
    Decimal, never float arithmetic)."""
    minor = int((Decimal(str(amount)) * 100).to_integral_value(rounding=ROUND_HALF_UP))
    return -minor if money_out_positive else minor
