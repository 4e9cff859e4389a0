"""Where the month is heading, and when a savings goal will be reached. Pure: `as_of` (the last
day the data covers, in the member's time zone) is passed in.

- **End-of-month spending**: what is spent so far (the figures' rules), plus the recurring bills
  and subscriptions still due this month (each active one's schedule after its last payment, a
  date already passed but not yet seen included: bills post late), plus everyday spending for the
  days left at a daily rate that blends the member's last three complete months (early in the
  month) with this month's own pace (later in it), weighted by the share of the month gone.
- **End-of-month savings**: moved to savings so far plus the recurring transfers to savings still
  due. A recurring payment to come is expected at the median of its last three (a member who
  has just raised a standing order is expected to keep it). **Income**: so far plus the salary
  payments the schedule still expects (with irregular income: at least the last three months'
  daily income for the days left).
- **A goal's completion date**: what is left over the recent saving pace (the mean of the last
  three complete months' savings); no date while the pace is nothing or negative, or when it
  would be more than a hundred years off.
"""

from __future__ import annotations

import calendar
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from badges.domain.categories import NOT_SPENDING, SpendingCategory
from badges.domain.figures import NAMES, Entry, MonthFigures, month_of, monthly_figures
from badges.insights.income import Income, Recurring, RecurringKind, payer_key

PACE_MONTHS = 3
FORECAST_YEARS = 100  # no completion date further off than this
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class ExpectedPayment:
    day: date
    merchant: str
    category: SpendingCategory
    kind: RecurringKind | None  # None for income
    amount_minor: int  # positive


@dataclass(frozen=True)
class MonthPrediction:
    month: date
    as_of: date
    spent_so_far_minor: int
    bills_to_come: tuple[ExpectedPayment, ...]
    everyday_to_come_minor: int
    predicted_spending_minor: int
    predicted_by_category: dict[str, int]
    saved_so_far_minor: int
    savings_to_come: tuple[ExpectedPayment, ...]
    predicted_savings_minor: int
    income_so_far_minor: int
    income_to_come: tuple[ExpectedPayment, ...]
    predicted_income_minor: int
    predicted_savings_rate: float | None


@dataclass(frozen=True)
class GoalForecast:
    target_minor: int
    saved_minor: int
    pace_per_month_minor: int  # the recent saving pace
    expected_completion: date | None  # None while the pace is nothing
    reached: bool
    on_track: bool | None  # against the deadline, when there is one
    needed_per_month_minor: int | None  # to meet the deadline from now
    reason: str


def predict_month(
    entries: Iterable[Entry],
    as_of: date,
    recurring: Sequence[Recurring],
    income: Income | None = None,
    figures_known: Sequence[MonthFigures] | None = None,
) -> MonthPrediction:
    """The month of `as_of`, predicted to its end from the entries up to `as_of`. `figures_known`:
    those entries' month figures when the caller has them (what is read of them is this month's
    amounts and which earlier months are complete, so their coverage may end the day before)."""
    month = month_of(as_of)
    month_end = month.replace(day=calendar.monthrange(month.year, month.month)[1])
    known = [e for e in entries if e.day <= as_of]
    if figures_known is None:
        figures_known = monthly_figures(known, coverage=(min((e.day for e in known), default=month), as_of))
    figures = {f.month: f for f in figures_known}
    now = figures.get(month) or _empty(month)
    history = [f for f in figures.values() if f.month < month and f.complete][-PACE_MONTHS:]

    active = [r for r in recurring if r.active]
    bills = _due(
        active, month, month_end, lambda r: r.kind in ("bill", "subscription") and r.category not in NOT_SPENDING
    )
    savings = _due(active, month, month_end, lambda r: r.kind == "saving")
    recurring_keys = {payer_key(r.merchant) for r in active}

    everyday = _everyday_by_category(known, recurring_keys)
    days_gone = as_of.day
    days_left = month_end.day - as_of.day
    month_days = month_end.day
    history_rate = (
        statistics.mean(sum(everyday[f.month].values()) / _days(f.month) for f in history) if history else None
    )
    pace = sum(everyday[month].values()) / days_gone
    share_gone = days_gone / month_days
    rate = pace if history_rate is None else share_gone * pace + (1 - share_gone) * history_rate
    everyday_to_come = round(rate * days_left)

    by_category: dict[str, int] = defaultdict(int, now.spending_by_category)
    for bill in bills:
        by_category[bill.category.value] += bill.amount_minor
    for category, amount in _split(everyday_to_come, everyday, [f.month for f in history] or [month]).items():
        by_category[category] += amount

    predicted_spending = now.spending_minor + sum(b.amount_minor for b in bills) + everyday_to_come
    predicted_savings = now.savings_minor + sum(s.amount_minor for s in savings)
    pay_to_come = _pay_to_come(income, month, month_end)
    income_to_come = sum(p.amount_minor for p in pay_to_come)
    if income is not None and not income.regular and history:
        daily_income = statistics.mean(f.income_minor / _days(f.month) for f in history)
        income_to_come = max(income_to_come, round(daily_income * days_left))
    predicted_income = now.income_minor + income_to_come
    return MonthPrediction(
        month=month,
        as_of=as_of,
        spent_so_far_minor=now.spending_minor,
        bills_to_come=tuple(bills),
        everyday_to_come_minor=everyday_to_come,
        predicted_spending_minor=predicted_spending,
        predicted_by_category={name: total for name, total in sorted(by_category.items()) if total},
        saved_so_far_minor=now.savings_minor,
        savings_to_come=tuple(savings),
        predicted_savings_minor=predicted_savings,
        income_so_far_minor=now.income_minor,
        income_to_come=tuple(pay_to_come),
        predicted_income_minor=predicted_income,
        predicted_savings_rate=round(predicted_savings / predicted_income, 4) if predicted_income > 0 else None,
    )


def goal_forecast(
    target_minor: int,
    saved_minor: int,
    months: Sequence[MonthFigures],
    as_of: date,
    deadline: date | None = None,
) -> GoalForecast:
    """When `target_minor` will have been saved, at the pace of the last three complete months
    before `as_of`'s month."""
    recent = [f for f in months if f.complete and f.month < month_of(as_of)][-PACE_MONTHS:]
    pace = round(statistics.mean(f.savings_minor for f in recent)) if recent else 0
    left = target_minor - saved_minor
    months_to_deadline = (deadline - as_of).days / DAYS_PER_MONTH if deadline is not None else None
    needed = None
    if months_to_deadline is not None and left > 0:
        needed = math.ceil(left / months_to_deadline) if months_to_deadline > 0 else left
    if left <= 0:
        return GoalForecast(target_minor, saved_minor, pace, as_of, True, True, None, "Goal reached.")
    if pace <= 0:
        reason = "At your recent pace (nothing put aside) the goal would not be reached."
        return GoalForecast(target_minor, saved_minor, pace, None, False, False if deadline else None, needed, reason)
    days = math.ceil(left / pace * DAYS_PER_MONTH)
    if days > FORECAST_YEARS * 366:  # past any date worth naming (and, far enough, past year 9999)
        reason = f"At your recent pace the goal would take more than {FORECAST_YEARS} years."
        return GoalForecast(target_minor, saved_minor, pace, None, False, False if deadline else None, needed, reason)
    expected = as_of + timedelta(days=days)
    on_track = expected <= deadline if deadline is not None else None
    reason = f"At your recent pace the goal is reached around {expected:%-d %B %Y}."
    if on_track is False and needed is not None:
        reason += f" To make {deadline:%-d %B %Y}, put aside about {needed / 100:,.2f} a month."
    return GoalForecast(target_minor, saved_minor, pace, expected, False, on_track, needed, reason)


def _due(
    recurring: Sequence[Recurring], month: date, month_end: date, wanted: Callable[[Recurring], bool]
) -> list[ExpectedPayment]:
    """Payments of the `wanted` recurring streams due this month after their last payment."""
    due = []
    for stream in recurring:
        if not wanted(stream):
            continue
        for day in stream.due_between(month, month_end):
            due.append(ExpectedPayment(day, stream.merchant, stream.category, stream.kind, stream.recent_minor))
    return sorted(due, key=lambda payment: (payment.day, payment.merchant))


def _pay_to_come(income: Income | None, month: date, month_end: date) -> list[ExpectedPayment]:
    if income is None or income.salary is None or not income.salary.regular:
        return []
    salary = income.salary
    return [
        ExpectedPayment(day, salary.payer, salary.category, None, salary.typical_minor)
        for day in salary.schedule.between(salary.last_paid, month, month_end)
    ]


def _everyday_by_category(entries: Iterable[Entry], recurring_keys: set[str]) -> dict[date, dict[str, int]]:
    """Spending by month and category that is not a recurring payment."""
    totals: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in entries:
        if entry.category in NOT_SPENDING or entry.account_kind == "savings":
            continue
        if payer_key(entry.merchant) in recurring_keys:
            continue
        totals[month_of(entry.day)][NAMES[entry.category]] -= entry.amount_minor
    return totals


def _split(amount: int, everyday: dict[date, dict[str, int]], months: Sequence[date]) -> dict[str, int]:
    """`amount` shared among categories as they shared everyday spending in `months`."""
    shares: dict[str, int] = defaultdict(int)
    for month in months:
        for category, total in everyday[month].items():
            shares[category] += max(0, total)
    whole = sum(shares.values())
    if whole <= 0:
        return {}
    return {category: round(amount * total / whole) for category, total in shares.items()}


def _days(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def _empty(month: date) -> MonthFigures:
    return MonthFigures(month, 0, {}, 0, {}, 0, 0, 0, 0)
