"""The programme's own spending taxonomy (the seed's `SpendingCategory`), and the one table that maps
what providers say into it. Pure.

Transactions arrive with a provider category in Plaid's `personal_finance_category` (v2) taxonomy
(TrueLayer's classification is translated into it by its adapter) and sometimes a merchant
category code (ISO 18245). `from_provider` turns those into one of ours with a confidence; where
it answers None, or its confidence is below `CONFIDENT`, the categoriser model decides (see
`badges/insights/categoriser.py`); a member's own correction wins over both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class SpendingCategory(StrEnum):
    INCOME_SALARY = "income_salary"
    INCOME_BENEFITS = "income_benefits"
    INCOME_OTHER = "income_other"
    SAVINGS = "savings"  # to and from savings and investments: money put aside (or taken back), not spent
    TRANSFER = "transfer"  # between the member's own accounts: neither spending nor saving
    RENT_MORTGAGE = "rent_mortgage"
    BILLS_UTILITIES = "bills_utilities"
    GROCERIES = "groceries"
    EATING_OUT = "eating_out"
    FAST_FOOD = "fast_food"
    GAMBLING = "gambling"
    TRANSPORT = "transport"
    SHOPPING = "shopping"
    ENTERTAINMENT = "entertainment"
    SUBSCRIPTIONS = "subscriptions"
    FEES = "fees"
    DEBT_REPAYMENT = "debt_repayment"
    CASH = "cash"
    OTHER = "other"


INCOME = frozenset({SpendingCategory.INCOME_SALARY, SpendingCategory.INCOME_BENEFITS, SpendingCategory.INCOME_OTHER})
# Money that leaves the member's accounts without being spent.
NOT_SPENDING = INCOME | {SpendingCategory.SAVINGS, SpendingCategory.TRANSFER, SpendingCategory.DEBT_REPAYMENT}

CategorySource = Literal["provider", "model", "member"]
# At or above this, a category may decide a badge on its own; below it, a decision waits for
# more data or asks the member.
CONFIDENT = 0.7


@dataclass(frozen=True, slots=True)
class Categorised:
    category: SpendingCategory
    source: CategorySource
    confidence: float  # 0..1


# A member's own word on a category: certain, and above every other source.
MEMBER_CONFIDENCE = 1.0


def by_member(category: SpendingCategory) -> Categorised:
    return Categorised(category, "member", MEMBER_CONFIDENCE)


# What is not the merchant in a statement line: numbers (store, reference, card and date digits),
# months, and the words banks put around a merchant's name.
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec")
_BANK_WORDS = (
    *("card", "payment", "payments", "purchase", "contactless", "pos", "visa", "debit", "credit", "mastercard"),
    *("to", "on", "at", "from", "ref", "reference", "gb", "uk", "us", "usa", "www", "com", "co", "ltd", "inc"),
    *("llc", "ppd", "id", "web", "des", "indn", "dd", "so", "bgc", "fpi", "fpo", "tfr"),
)
_NOT_MERCHANT = frozenset(_MONTHS + _BANK_WORDS)
_TOKEN = re.compile(r"[a-z0-9&']+")


def merchant_label(description: str, merchant_name: str | None) -> str:
    """Who a transaction was with, normalised so the same merchant reads the same on every line:
    the provider's merchant name where it gives one, else the description without its numbers,
    months and banking words (`CARD PAYMENT TO TESCO STORES 2041 ON 03 MAR` -> `tesco stores`).
    A member's correction applies to every transaction of theirs with the same label."""
    if merchant_name and merchant_name.strip():
        return " ".join(_TOKEN.findall(merchant_name.lower()))
    words = [
        word
        for word in _TOKEN.findall(description.lower())
        if word not in _NOT_MERCHANT and not any(ch.isdigit() for ch in word)
    ]
    return " ".join(words) or " ".join(_TOKEN.findall(description.lower()))


C = SpendingCategory

# Plaid's `personal_finance_category.detailed` (v2) where it says more than its primary does.
PLAID_DETAILED: dict[str, SpendingCategory] = {
    "INCOME_WAGES": C.INCOME_SALARY,
    "INCOME_SALARY": C.INCOME_SALARY,
    "INCOME_UNEMPLOYMENT": C.INCOME_BENEFITS,
    "INCOME_RETIREMENT_PENSION": C.INCOME_BENEFITS,
    "INCOME_TAX_REFUND": C.INCOME_OTHER,
    # Money in from savings, on a current account, is saving undone (on the savings account itself
    # the same category is the other side of a move to savings: figures count only one side).
    "TRANSFER_IN_SAVINGS": C.SAVINGS,
    "TRANSFER_OUT_SAVINGS": C.SAVINGS,
    "TRANSFER_OUT_INVESTMENT_AND_RETIREMENT_FUNDS": C.SAVINGS,
    "TRANSFER_IN_INVESTMENT_AND_RETIREMENT_FUNDS": C.SAVINGS,
    "TRANSFER_IN_CASH_ADVANCES_AND_LOANS": C.INCOME_OTHER,
    "TRANSFER_IN_DEPOSIT": C.CASH,
    "TRANSFER_OUT_WITHDRAWAL": C.CASH,
    "RENT_AND_UTILITIES_RENT": C.RENT_MORTGAGE,
    "LOAN_PAYMENTS_MORTGAGE_PAYMENT": C.RENT_MORTGAGE,
    "FOOD_AND_DRINK_GROCERIES": C.GROCERIES,
    "FOOD_AND_DRINK_FAST_FOOD": C.FAST_FOOD,
    "FOOD_AND_DRINK_RESTAURANT": C.EATING_OUT,
    "FOOD_AND_DRINK_COFFEE": C.EATING_OUT,
    "FOOD_AND_DRINK_BEER_WINE_AND_LIQUOR": C.EATING_OUT,
    "FOOD_AND_DRINK_VENDING_MACHINES": C.EATING_OUT,
    "ENTERTAINMENT_CASINOS_AND_GAMBLING": C.GAMBLING,
    "ENTERTAINMENT_TV_AND_MOVIES": C.SUBSCRIPTIONS,
    "ENTERTAINMENT_MUSIC_AND_AUDIO": C.SUBSCRIPTIONS,
    "GENERAL_SERVICES_OTHER_GENERAL_SERVICES": C.SUBSCRIPTIONS,
    "RENT_AND_UTILITIES_TELEPHONE": C.BILLS_UTILITIES,
    "GENERAL_SERVICES_INSURANCE": C.BILLS_UTILITIES,
    "GENERAL_SERVICES_EDUCATION": C.BILLS_UTILITIES,
    "GENERAL_SERVICES_CHILDCARE": C.BILLS_UTILITIES,
    "GENERAL_SERVICES_AUTOMOTIVE": C.TRANSPORT,
    "GOVERNMENT_AND_NON_PROFIT_TAX_PAYMENT": C.BILLS_UTILITIES,
}
# ... and by its primary otherwise.
PLAID_PRIMARY: dict[str, SpendingCategory] = {
    "INCOME": C.INCOME_OTHER,
    "TRANSFER_IN": C.TRANSFER,
    "TRANSFER_OUT": C.TRANSFER,
    "LOAN_PAYMENTS": C.DEBT_REPAYMENT,
    "BANK_FEES": C.FEES,
    "ENTERTAINMENT": C.ENTERTAINMENT,
    "FOOD_AND_DRINK": C.EATING_OUT,
    "GENERAL_MERCHANDISE": C.SHOPPING,
    "HOME_IMPROVEMENT": C.SHOPPING,
    "MEDICAL": C.OTHER,
    "PERSONAL_CARE": C.SHOPPING,
    "GENERAL_SERVICES": C.OTHER,
    "GOVERNMENT_AND_NON_PROFIT": C.OTHER,
    "TRANSPORTATION": C.TRANSPORT,
    "TRAVEL": C.ENTERTAINMENT,
    "RENT_AND_UTILITIES": C.BILLS_UTILITIES,
}
# Plaid's `personal_finance_category.confidence_level`, as a probability. Absent (a provider that
# gives none, or an older transaction): HIGH for a detailed category, MEDIUM for a primary only.
PLAID_CONFIDENCE: dict[str, float] = {"VERY_HIGH": 0.97, "HIGH": 0.88, "MEDIUM": 0.6, "LOW": 0.3, "UNKNOWN": 0.0}
# Merchant category codes (ISO 18245) that settle a category on their own, by range.
MCC_RANGES: tuple[tuple[int, int, SpendingCategory], ...] = (
    (4111, 4131, C.TRANSPORT),
    (4784, 4784, C.TRANSPORT),
    (4812, 4816, C.BILLS_UTILITIES),
    (4899, 4900, C.BILLS_UTILITIES),
    (5411, 5411, C.GROCERIES),
    (5422, 5499, C.GROCERIES),
    (5541, 5542, C.TRANSPORT),
    (5812, 5813, C.EATING_OUT),
    (5814, 5814, C.FAST_FOOD),
    (5815, 5818, C.SUBSCRIPTIONS),
    (5960, 5969, C.SHOPPING),
    (6010, 6011, C.CASH),
    (6300, 6300, C.BILLS_UTILITIES),
    (7800, 7801, C.GAMBLING),
    (7802, 7802, C.GAMBLING),
    (7995, 7995, C.GAMBLING),
    (7832, 7841, C.ENTERTAINMENT),
    (9311, 9311, C.BILLS_UTILITIES),
)


def from_mcc(mcc: str | None) -> SpendingCategory | None:
    if not mcc or not mcc.isdigit():
        return None
    code = int(mcc)
    return next((category for low, high, category in MCC_RANGES if low <= code <= high), None)


def from_provider(
    detailed: str | None, primary: str | None, confidence_level: str | None = None, mcc: str | None = None
) -> Categorised | None:
    """The programme's category for what the provider said, with a confidence; None when the
    provider said nothing usable. A merchant category code that settles a category outranks the
    provider's category (it is the card network's own record of the merchant's trade)."""
    by_mcc = from_mcc(mcc)
    # Coffee chains trade under the fast-food code (5814); the provider's coffee says more.
    if by_mcc is SpendingCategory.FAST_FOOD and detailed == "FOOD_AND_DRINK_COFFEE":
        by_mcc = SpendingCategory.EATING_OUT
    if by_mcc is not None:
        return Categorised(by_mcc, "provider", PLAID_CONFIDENCE["VERY_HIGH"])
    category = PLAID_DETAILED.get(detailed or "") or PLAID_PRIMARY.get(primary or "")
    if category is None:
        return None
    if confidence_level is not None:
        confidence = PLAID_CONFIDENCE.get(confidence_level, 0.0)
    else:
        confidence = PLAID_CONFIDENCE["HIGH"] if detailed else PLAID_CONFIDENCE["MEDIUM"]
    if detailed not in PLAID_DETAILED:  # by the primary alone: less specific than it looks
        confidence = min(confidence, PLAID_CONFIDENCE["MEDIUM"])
    return Categorised(category, "provider", confidence)
