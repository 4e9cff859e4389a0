"""Income and recurring payments detected from a member's own transactions. Pure (no clock: the
day the answer is for is passed in).

- **Salary**: inflows to current accounts grouped by payer. A payer's stream has a frequency when
  at least three quarters of the gaps between its payments fit one schedule (weekly 7±1 days,
  fortnightly 14±2, four-weekly 28±1, monthly 25-35 days, quarterly, yearly); the salary is the
  biggest stream categorised `income_salary`, or else the biggest regular stream that brings at
  least a third of the member's income ("large regular inflows from one payer").
- **Regular income**: a salary on a schedule, with payments that vary by less than 20 % (median
  absolute deviation over the median), bringing at least half the member's income. Anything else
  (gig work, many payers, no schedule) is irregular.
- **Next expected date**: fixed-interval schedules add their period to the last payment. Monthly
  ones learn the member's own rule from the history: a day of the month, moved to the working day
  before or after when it falls on a weekend, or the last working day (the rule that explains most
  past payments wins). Bank holidays are not known here.
- **Recurring bills and subscriptions**: outflows to one merchant, at least three times, on a
  schedule as above, with similar amounts (within 25 % by median absolute deviation; 40 % for
  utilities and card repayments, whose amounts follow the season or the card's spending).
  Transfers to savings are found the same way (`kind="saving"`), so predictions can count them.
"""

from __future__ import annotations

import calendar
import functools
import itertools
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from badges.domain.categories import INCOME, SpendingCategory
from badges.domain.figures import Entry, month_of

C = SpendingCategory
Frequency = Literal["weekly", "fortnightly", "four_weekly", "monthly", "quarterly", "yearly", "irregular"]
PayFrequency = Literal["weekly", "fortnightly", "four_weekly", "monthly", "irregular"]
RecurringKind = Literal["bill", "subscription", "saving", "debt"]
MonthlyShift = Literal["none", "before", "after", "last_working_day"]

# A schedule fits when at least this share of the gaps between payments agree with it.
FIT = 0.75
MIN_OCCURRENCES = 3
REGULAR_PAY_VARIATION = 0.2
SALARY_SHARE = 1 / 3  # a stream not categorised salary must bring this share of income to be one
REGULAR_INCOME_SHARE = 0.5
BILL_VARIATION = 0.25
VARIABLE_BILL_VARIATION = 0.4
VARIABLE_BILLS = frozenset({C.BILLS_UTILITIES, C.DEBT_REPAYMENT})
# Gaps, in days, that each schedule accepts (fixed intervals first: they are the stricter).
_GAPS: dict[str, tuple[int, int, float]] = {  # frequency: (shortest, longest, nominal)
    "weekly": (6, 8, 7),
    "fortnightly": (12, 16, 14),
    "four_weekly": (27, 29, 28),
    "monthly": (25, 35, 365.25 / 12),
    "quarterly": (84, 98, 365.25 / 4),
    "yearly": (355, 375, 365.25),
}
PER_MONTH: dict[str, float] = {
    "weekly": 52 / 12,
    "fortnightly": 26 / 12,
    "four_weekly": 13 / 12,
    "monthly": 1,
    "quarterly": 1 / 3,
    "yearly": 1 / 12,
}
_DIGITS = re.compile(r"[\d#*]+")


@dataclass(frozen=True)
class Schedule:
    """When a stream's payments fall: every `period_days`, or monthly by a learned rule."""

    frequency: Frequency
    period_days: int = 0  # weekly, fortnightly, four-weekly
    day_of_month: int = 0  # monthly, quarterly, yearly: the nominal day
    shift: MonthlyShift = "none"  # what happens when that day is not a working day
    months: int = 0  # 1 monthly, 3 quarterly, 12 yearly

    def after(self, day: date) -> date | None:
        """The first scheduled date after `day` (a payment on `day` being the last one seen)."""
        if self.frequency == "irregular":
            return None
        if self.period_days:
            return day + timedelta(days=self.period_days)
        # The next cycle: at least three quarters of one later, so a payment moved a few days
        # early (a weekend) is not followed by its own cycle's date.
        earliest = day + timedelta(days=round(self.months * 30.44 * 0.75))
        month = _add_months(day.replace(day=1), -1)
        while True:
            candidate = _monthly_date(month, self.day_of_month, self.shift)
            if candidate >= earliest:
                return candidate
            month = _add_months(month, 1)

    def between(self, last: date, start: date, end: date) -> list[date]:
        """Scheduled dates from `start` to `end` inclusive, counting on from the payment on `last`."""
        dates = []
        day = self.after(last)
        while day is not None and day <= end:
            if day >= start:
                dates.append(day)
            day = self.after(day)
        return dates


@dataclass(frozen=True)
class IncomeStream:
    """Money in from one payer."""

    payer: str
    category: SpendingCategory
    frequency: Frequency
    regular: bool
    typical_minor: int  # the median payment
    monthly_minor: int  # what it brings in a typical month
    occurrences: int
    first_paid: date
    last_paid: date
    next_expected: date | None  # None when irregular
    missed: int  # scheduled dates that passed before `as_of` without a payment
    schedule: Schedule


@dataclass(frozen=True)
class Income:
    """A member's income, as the dashboard and the badges read it."""

    frequency: PayFrequency  # the salary's; irregular when there is none or it keeps no schedule
    regular: bool
    typical_minor: int  # a typical salary payment; with no salary, the median month's income
    next_expected: date | None
    salary: IncomeStream | None
    streams: tuple[IncomeStream, ...]  # biggest first
    monthly_median_minor: int  # over the complete months seen
    monthly_variation: float | None  # the months' coefficient of variation
    reason: str  # in words a member can read


@dataclass(frozen=True)
class Recurring:
    """A payment that comes round: a bill, a subscription, a debt repayment or a saving."""

    merchant: str
    category: SpendingCategory
    kind: RecurringKind
    frequency: Frequency
    typical_minor: int  # a typical payment, positive
    recent_minor: int  # the median of the last three: what the next one is likely to be
    monthly_minor: int
    occurrences: int
    first_paid: date
    last_paid: date
    next_expected: date | None
    active: bool  # not more than one scheduled payment missed by `as_of`
    schedule: Schedule

    def due_between(self, start: date, end: date) -> list[date]:
        return self.schedule.between(self.last_paid, start, end)


@functools.lru_cache(maxsize=1 << 16)  # one evaluation asks for each merchant's key many times
def payer_key(merchant: str) -> str:
    """Store and reference numbers dropped, case folded: one key per counterparty."""
    return " ".join(_DIGITS.sub(" ", merchant).lower().split())


def detect_income(
    entries: Iterable[Entry], as_of: date | None = None, coverage: tuple[date, date] | None = None
) -> Income:
    """Salary, its frequency and next date, and whether income is regular, from the history.
    `coverage` (first and last day synced) tells complete months from partial ones; by default
    the first and last entries' days."""
    inflows = [
        e
        for e in entries
        if e.amount_minor > 0 and e.account_kind != "savings" and (e.category in INCOME or e.category is C.OTHER)
    ]
    if not inflows:
        return Income("irregular", False, 0, None, None, (), 0, None, "No income has been seen yet.")
    first = coverage[0] if coverage else min(e.day for e in inflows)
    last = coverage[1] if coverage else max(e.day for e in inflows)
    # Uncategorised inflows count here: one of them may be the salary a provider did not name.
    monthly = _complete_month_totals(inflows, first, last)
    months_spanned = max(1.0, ((last - first).days + 1) / (365.25 / 12))
    average_month = sum(e.amount_minor for e in inflows) / months_spanned
    streams = []
    for key, group in _group(inflows):
        stream = _income_stream(key, group, months_spanned, as_of)
        if stream is not None:
            streams.append(stream)
    streams.sort(key=lambda stream: -stream.monthly_minor)
    salary = _salary(streams, average_month)
    median_month = int(statistics.median(monthly)) if monthly else round(average_month)
    variation = _variation(monthly)
    if salary is None:
        reason = "Your income comes from several payers or at no fixed interval, so it counts as irregular."
        return Income("irregular", False, median_month, None, None, tuple(streams), median_month, variation, reason)
    share = salary.monthly_minor / average_month if average_month else 0.0
    regular = salary.regular and share >= REGULAR_INCOME_SHARE
    frequency: PayFrequency = salary.frequency if salary.frequency in PER_MONTH else "irregular"  # type: ignore[assignment]
    if regular:
        reason = f"Paid {frequency.replace('_', '-')} by {salary.payer}, about the same each time."
    elif not salary.regular:
        reason = f"Pay from {salary.payer} varies in timing or amount, so income counts as irregular."
    else:
        reason = f"Pay from {salary.payer} is regular but brings only {share:.0%} of your income."
    return Income(
        frequency=frequency if salary.regular else "irregular",
        regular=regular,
        typical_minor=salary.typical_minor,
        next_expected=salary.next_expected,
        salary=salary,
        streams=tuple(streams),
        monthly_median_minor=median_month,
        monthly_variation=variation,
        reason=reason,
    )


def detect_recurring(entries: Iterable[Entry], as_of: date | None = None) -> list[Recurring]:
    """Bills, subscriptions, debt repayments and savings transfers that come round, biggest first."""
    outflows = [
        e
        for e in entries
        if e.amount_minor < 0
        and e.account_kind != "savings"
        and e.category not in INCOME
        and e.category is not C.TRANSFER
    ]
    found = []
    for key, group in _group(outflows):
        payments = _by_day(group)
        if len(payments) < MIN_OCCURRENCES:
            continue
        schedule = _schedule(sorted(payments))
        if schedule.frequency == "irregular":
            continue
        amounts = [-amount for amount in payments.values()]
        category = statistics.mode(e.category for e in group)
        limit = VARIABLE_BILL_VARIATION if category in VARIABLE_BILLS else BILL_VARIATION
        if _spread(amounts) > limit:
            continue
        days = sorted(payments)
        typical = int(statistics.median(amounts))
        next_expected, missed = _next(schedule, days[-1], as_of)
        found.append(
            Recurring(
                merchant=group[-1].merchant or key,
                category=category,
                kind=_kind(category),
                frequency=schedule.frequency,
                typical_minor=typical,
                recent_minor=int(statistics.median(-payments[day] for day in days[-3:])),
                monthly_minor=round(typical * PER_MONTH[schedule.frequency]),
                occurrences=len(days),
                first_paid=days[0],
                last_paid=days[-1],
                next_expected=next_expected,
                active=missed <= 1,
                schedule=schedule,
            )
        )
    found.sort(key=lambda recurring: -recurring.monthly_minor)
    return found


def _income_stream(key: str, group: list[Entry], months_spanned: float, as_of: date | None) -> IncomeStream | None:
    payments = _by_day(group)
    days = sorted(payments)
    amounts = [payments[day] for day in days]
    typical = int(statistics.median(amounts))
    schedule = _schedule(days) if len(days) >= MIN_OCCURRENCES else Schedule("irregular")
    if schedule.frequency == "irregular":
        monthly = round(sum(amounts) / months_spanned)
    else:
        monthly = round(typical * PER_MONTH[schedule.frequency])
    regular = schedule.frequency in PER_MONTH and _spread(amounts) <= REGULAR_PAY_VARIATION
    next_expected, missed = _next(schedule, days[-1], as_of)
    return IncomeStream(
        payer=group[-1].merchant or key,
        category=statistics.mode(e.category for e in group),
        frequency=schedule.frequency,
        regular=regular,
        typical_minor=typical,
        monthly_minor=monthly,
        occurrences=len(days),
        first_paid=days[0],
        last_paid=days[-1],
        next_expected=next_expected,
        missed=missed,
        schedule=schedule,
    )


def _salary(streams: Sequence[IncomeStream], average_month: float) -> IncomeStream | None:
    salaried = [s for s in streams if s.category is C.INCOME_SALARY]
    if salaried:
        return salaried[0]
    large = [s for s in streams if s.regular and s.monthly_minor >= SALARY_SHARE * average_month]
    return large[0] if large else None


def _next(schedule: Schedule, last: date, as_of: date | None) -> tuple[date | None, int]:
    """The next scheduled date after the last payment, rolled on past dates before `as_of` that
    went by without one (counted as missed)."""
    upcoming = schedule.after(last)
    missed = 0
    while upcoming is not None and as_of is not None and upcoming < as_of:
        missed += 1
        upcoming = schedule.after(upcoming)
    return upcoming, missed


def _schedule(days: Sequence[date]) -> Schedule:
    """The schedule most of the gaps between `days` (sorted, distinct) agree with."""
    if len(days) < MIN_OCCURRENCES:
        return Schedule("irregular")
    gaps = [(b - a).days for a, b in itertools.pairwise(days)]
    for frequency, (shortest, longest, _) in _GAPS.items():
        fitting = sum(shortest <= gap <= longest for gap in gaps)
        if fitting / len(gaps) < FIT:
            continue
        if frequency in ("weekly", "fortnightly", "four_weekly"):
            return Schedule(frequency, period_days=round(statistics.median(gaps)))  # type: ignore[arg-type]
        months = {"monthly": 1, "quarterly": 3, "yearly": 12}[frequency]
        day_of_month, shift = _monthly_rule(days)
        return Schedule(frequency, day_of_month=day_of_month, shift=shift, months=months)  # type: ignore[arg-type]
    return Schedule("irregular")


def _monthly_rule(days: Sequence[date]) -> tuple[int, MonthlyShift]:
    """The day-of-month rule that explains most of `days` (ties: the plainest rule)."""
    months = {_add_months(day.replace(day=1), offset) for day in days for offset in (0, 1)}
    seen = set(days)
    plainness = {"none": 3, "before": 2, "after": 2, "last_working_day": 1}
    candidates: list[tuple[int, MonthlyShift]] = [(31, "last_working_day")]
    candidates += [(anchor, shift) for shift in ("none", "before", "after") for anchor in sorted({d.day for d in days})]
    ranked = [
        (sum(_monthly_date(month, anchor, shift) in seen for month in months), plainness[shift], -anchor, shift)
        for anchor, shift in candidates
    ]
    _, _, anchor, shift = max(ranked)
    return -anchor, shift


@functools.lru_cache(maxsize=1 << 14)  # learning a rule tries every anchor in every month of the history
def _monthly_date(month: date, day_of_month: int, shift: MonthlyShift) -> date:
    last_day = calendar.monthrange(month.year, month.month)[1]
    if shift == "last_working_day":
        day = month.replace(day=last_day)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return day
    day = month.replace(day=min(day_of_month, last_day))
    if shift == "before":
        while day.weekday() >= 5:
            day -= timedelta(days=1)
    elif shift == "after":
        while day.weekday() >= 5:
            day += timedelta(days=1)
    return day


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _group(entries: Iterable[Entry]) -> Iterator[tuple[str, list[Entry]]]:
    """Entries by counterparty; those with no merchant by their category (savings transfers)."""
    groups: dict[str, list[Entry]] = defaultdict(list)
    for entry in sorted(entries, key=lambda e: e.day):
        groups[payer_key(entry.merchant) or entry.category.value].append(entry)
    yield from groups.items()


def _by_day(entries: Iterable[Entry]) -> dict[date, int]:
    """One payment per day: two on the same day (a split payment) count as one."""
    totals: dict[date, int] = defaultdict(int)
    for entry in entries:
        totals[entry.day] += entry.amount_minor
    return dict(totals)


def _spread(amounts: Sequence[int]) -> float:
    """Median absolute deviation over the median: how far payments stray, robust to one-offs."""
    middle = statistics.median(amounts)
    if middle <= 0:
        return float("inf")
    return float(statistics.median(abs(amount - middle) for amount in amounts) / middle)


def _variation(values: Sequence[int]) -> float | None:
    if len(values) < 2 or statistics.mean(values) <= 0:
        return None
    return round(statistics.pstdev(values) / statistics.mean(values), 4)


def _complete_month_totals(entries: Iterable[Entry], first: date, last: date) -> list[int]:
    """Income of each calendar month wholly inside first..last (zero months included)."""
    totals: dict[date, int] = defaultdict(int)
    for entry in entries:
        totals[month_of(entry.day)] += entry.amount_minor
    month = first.replace(day=1) if first.day == 1 else _add_months(first.replace(day=1), 1)
    result = []
    while _add_months(month, 1) - timedelta(days=1) <= last:
        result.append(totals.get(month, 0))
        month = _add_months(month, 1)
    return result


def _kind(category: SpendingCategory) -> RecurringKind:
    if category is C.SAVINGS:
        return "saving"
    if category is C.DEBT_REPAYMENT:
        return "debt"
    if category in (C.SUBSCRIPTIONS, C.ENTERTAINMENT, C.SHOPPING):
        return "subscription"
    return "bill"
