"""A member's money month by month, from their categorised transactions. Pure.

Months are calendar months of the dates given (the caller passes dates in the member's time
zone). Amounts are integer minor units, positive for money in.

- **Income**: money in, categorised as income, on any account (interest on savings included).
- **Spending**: money out in a spending category, less refunds in that category, on current and
  credit-card accounts. Transfers between own accounts, card repayments and savings are not
  spending.
- **Savings**: net money moved from current accounts to savings and investments: out to savings
  counts, money brought back from savings counts against it, so moving money in and straight
  back out saves nothing. The savings account's own side of the same moves is not counted again.
- **Savings rate**: savings over income, None in a month without income.
"""

from __future__ import annotations

import calendar
import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

from badges.domain.categories import INCOME, NOT_SPENDING, SpendingCategory

C = SpendingCategory
NAMES = {category: category.value for category in SpendingCategory}  # a tenth of `.value`'s cost, per entry
SAVINGS_ACCOUNT_TYPES = frozenset({"savings", "investment", "brokerage", "isa", "cd", "money market"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One categorised transaction, as figures need it."""

    day: date
    amount_minor: int
    category: SpendingCategory
    account_kind: str = "current"  # current, credit, savings (see `account_kind`)
    merchant: str = ""
    account: str = ""  # the account's id, where one member's accounts must be told apart
    transaction_id: str = ""


def account_kind(account_type: str, subtype: str | None) -> str:
    """Plaid's and TrueLayer's account types as three kinds: current, credit, savings."""
    kind = (subtype or account_type or "").lower()
    if account_type.lower() in ("investment", "brokerage") or kind in SAVINGS_ACCOUNT_TYPES:
        return "savings"
    if account_type.lower() in ("credit", "credit_card") or kind in ("credit card", "credit_card"):
        return "credit"
    return "current"


@dataclass(frozen=True)
class MonthFigures:
    month: date  # the first of the month
    income_minor: int
    income_by_kind: dict[str, int]
    spending_minor: int
    spending_by_category: dict[str, int]
    savings_minor: int
    fees_minor: int
    transactions: int
    covered_days: int  # days of the month the synced history covers
    savings_rate: float | None = field(default=None)

    @property
    def complete(self) -> bool:
        return self.covered_days >= days_in_month(self.month)


@functools.lru_cache(maxsize=1 << 12)  # asked of every month figure, many times an evaluation
def days_in_month(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def month_of(day: date) -> date:
    return date(day.year, day.month, 1)  # (`day.replace(day=1)` costs twice as much, on every entry)


def monthly_figures(entries: Iterable[Entry], coverage: tuple[date, date] | None = None) -> list[MonthFigures]:
    """The figures of every month with an entry or inside `coverage` (first and last day the
    history covers, inclusive), oldest first."""
    income: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    spending: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    savings: dict[date, int] = defaultdict(int)
    counts: dict[date, int] = defaultdict(int)
    for entry in entries:
        month = month_of(entry.day)
        counts[month] += 1
        if entry.category in INCOME:
            if entry.amount_minor > 0:
                income[month][NAMES[entry.category]] += entry.amount_minor
            continue
        if entry.account_kind == "savings":
            continue  # the other side of moves already counted where they left the current account
        if entry.category is C.SAVINGS:
            savings[month] -= entry.amount_minor  # out to savings: +; back from savings: -
        elif entry.category not in NOT_SPENDING:
            spending[month][NAMES[entry.category]] -= entry.amount_minor  # refunds reduce it
    months = set(counts)
    if coverage is not None:
        months |= set(_months_between(month_of(coverage[0]), month_of(coverage[1])))
    figures = []
    for month in sorted(months):
        by_category = {name: total for name, total in sorted(spending[month].items()) if total}
        total_income = sum(income[month].values())
        saved = savings[month]
        figures.append(
            MonthFigures(
                month=month,
                income_minor=total_income,
                income_by_kind=dict(sorted(income[month].items())),
                spending_minor=sum(by_category.values()),
                spending_by_category=by_category,
                savings_minor=saved,
                fees_minor=by_category.get(C.FEES.value, 0),
                transactions=counts[month],
                covered_days=_covered_days(month, coverage),
                savings_rate=float(Fraction(saved, total_income)) if total_income > 0 else None,
            )
        )
    return figures


def _months_between(first: date, last: date) -> Iterable[date]:
    month = first
    while month <= last:
        yield month
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _covered_days(month: date, coverage: tuple[date, date] | None) -> int:
    days = calendar.monthrange(month.year, month.month)[1]
    if coverage is None:
        return days
    start = max(coverage[0], month)
    end = min(coverage[1], month.replace(day=days))
    return max(0, (end - start).days + 1)


@dataclass(frozen=True)
class Trend:
    """A figure against the month before and the same month a year before (None where there is
    no such month, or it was zero)."""

    month: date
    value: int
    month_on_month: float | None
    year_on_year: float | None


def trends(figures: Sequence[MonthFigures], pick: str) -> list[Trend]:
    """Month-on-month and year-on-year change of one figure (`income_minor`, `spending_minor`,
    `savings_minor`, or `spending:<category>`), for complete months."""
    values: dict[date, int] = {}
    for figure in figures:
        if not figure.complete:
            continue
        if pick.startswith("spending:"):
            values[figure.month] = figure.spending_by_category.get(pick.partition(":")[2], 0)
        else:
            values[figure.month] = int(getattr(figure, pick))
    result = []
    for first, value in sorted(values.items()):
        previous = values.get(date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1))
        last_year = values.get(date(first.year - 1, first.month, 1))
        result.append(Trend(first, value, _change(value, previous), _change(value, last_year)))
    return result


def _change(value: int, before: int | None) -> float | None:
    if before is None or before == 0:
        return None
    return round((value - before) / abs(before), 4)
