"""The programme's success metrics (the seed's): what each one measures, its target, the windows it
is read over, and the arithmetic from the counts the database gives (`db/metrics.py`). Pure.

Every metric is read over a window of time: the last 30 days (the figure an operator sees first),
and each calendar month (UTC), the current one to date. A member's **engagement action** is
something the member did that the database records with its time: an accepted real-time event
(`event_receipts`), or a reading or change of their own data that the audit log records as the
member's (their rewards, goals, insights, comparisons, transactions, bank connections, profile; a
consent they gave or revoked). An **engagement day** is a UTC day with at least one.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Literal

from badges.domain.categories import SpendingCategory
from badges.domain.figures import Entry, account_kind, monthly_figures

TRAILING_DAYS = 30
# A month's savings rate must beat the month before by this much (a percentage point) to count
# as an improvement, so a rate that only wobbles does not.
SAVINGS_RATE_STEP = 0.01


@dataclass(frozen=True, slots=True)
class Window:
    label: str  # "last 30 days", "2026-05"
    start: datetime
    end: datetime  # exclusive
    partial: bool  # still running: the current month, to date

    @property
    def month(self) -> date:
        return self.start.date().replace(day=1)


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def add_months(first: datetime, months: int) -> datetime:
    index = first.year * 12 + first.month - 1 + months
    return first.replace(year=index // 12, month=index % 12 + 1)


def month_windows(now: datetime, months: int) -> list[Window]:
    """The last `months` calendar months (UTC), oldest first; the last one is the current month,
    to `now`."""
    current = month_start(now)
    windows = []
    for back in range(months - 1, -1, -1):
        start = add_months(current, -back)
        partial = back == 0
        windows.append(Window(start.strftime("%Y-%m"), start, now if partial else add_months(start, 1), partial))
    return windows


def trailing_window(now: datetime) -> Window:
    return Window(f"last {TRAILING_DAYS} days", now - timedelta(days=TRAILING_DAYS), now, partial=False)


class MetricId(StrEnum):
    OPEN_BANKING_ADOPTION = "open_banking_adoption"
    REAL_TIME_COMPLETION = "real_time_badge_completion"
    ENGAGEMENT_UPLIFT = "open_banking_engagement_uplift"
    COMPARATIVE_ENGAGEMENT = "comparative_analytics_engagement"
    BEHAVIOUR_IMPROVEMENT = "behaviour_improvement"


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    id: MetricId
    name: str
    target: float | None  # None: the seed names the metric and sets no target
    target_text: str
    definition: str
    numerator: str  # what the reading's numerator counts
    denominator: str
    # "share": a fraction of a population (0..1); "uplift": a ratio less one (0.6 = +60 %).
    unit: Literal["share", "uplift"]


ACTIVE = (
    "An active member is a member with at least one engagement action in the window: an accepted"
    " real-time event, or a reading or change of their own data that the audit log records as the"
    " member's (rewards, goals, insights, comparisons, transactions, bank connections, profile, a"
    " consent given or revoked). Open-banking members are active members whose open_banking consent"
    " was in force at some time in the window (granted before its end, not revoked or expired before"
    " its start)."
)
DEFINITIONS: tuple[MetricDefinition, ...] = (
    MetricDefinition(
        MetricId.OPEN_BANKING_ADOPTION,
        "Open-banking adoption",
        0.25,
        "> 25 % of active members",
        "Open-banking members as a share of active members in the window. " + ACTIVE,
        "open-banking members",
        "active members",
        "share",
    ),
    MetricDefinition(
        MetricId.REAL_TIME_COMPLETION,
        "Real-time badge completion rate",
        0.5,
        "> 50 %",
        "Of the (member, real-time badge) pairs worked on in the window (progress recorded or the badge"
        " awarded; real-time badges are those whose rule is a count, streak, distinct, window or tiers"
        " rule), the share in which the member earned the badge (any instance or tier) in the window.",
        "badges completed",
        "badges worked on",
        "share",
    ),
    MetricDefinition(
        MetricId.ENGAGEMENT_UPLIFT,
        "Engagement uplift of open-banking members",
        0.6,
        "+60 % or more",
        "Mean engagement days (UTC days with at least one engagement action) of open-banking members,"
        " against the mean of the other active members, less one: +60 % means 1.6 times as many days."
        " None when either group is empty. " + ACTIVE,
        "engagement days per open-banking member",
        "engagement days per other active member",
        "uplift",
    ),
    MetricDefinition(
        MetricId.COMPARATIVE_ENGAGEMENT,
        "Comparative-analytics engagement",
        0.8,
        "> 80 % of open-banking members",
        "Open-banking members who looked at their peer comparisons in the window (the audit log's"
        " read.comparisons, recorded when GET /v1/me/comparisons showed them their figures), as a"
        " share of open-banking members. " + ACTIVE,
        "open-banking members who viewed comparisons",
        "open-banking members",
        "share",
    ),
    MetricDefinition(
        MetricId.BEHAVIOUR_IMPROVEMENT,
        "Behaviour improvement (savings rate)",
        None,
        "no target set by the seed",
        "Of the members whose synced bank data gives a savings rate (savings over income, as the"
        " member's own figures compute it) for both a complete calendar month and the month before,"
        " the share whose rate rose by at least one percentage point. Read per complete month; the"
        " figure shown first is the last complete month. Bank data is deleted when open_banking"
        " consent ends, so past months count the members who still hold it.",
        "members whose savings rate rose",
        "members with a savings rate in both months",
        "share",
    ),
)
BY_ID = {definition.id: definition for definition in DEFINITIONS}


@dataclass(frozen=True, slots=True)
class Reading:
    """A metric over one window: `value` is None where the population is empty."""

    value: float | None
    numerator: float
    denominator: float

    def met(self, definition: MetricDefinition) -> bool | None:
        if self.value is None or definition.target is None:
            return None
        # Shares are "more than" their target; the uplift is "+60 % or more".
        return self.value > definition.target if definition.unit == "share" else self.value >= definition.target


def share(part: int, whole: int) -> Reading:
    return Reading(part / whole if whole else None, part, whole)


@dataclass(frozen=True, slots=True)
class WindowActivity:
    """Counts of one window's active members (`db/metrics.py`)."""

    active: int
    open_banking: int
    open_banking_days: int  # engagement days, summed over open-banking members
    other_days: int  # and over the other active members
    open_banking_compared: int  # open-banking members who viewed their comparisons


def adoption(activity: WindowActivity) -> Reading:
    return share(activity.open_banking, activity.active)


def comparative_engagement(activity: WindowActivity) -> Reading:
    return share(activity.open_banking_compared, activity.open_banking)


def engagement_uplift(activity: WindowActivity) -> Reading:
    others = activity.active - activity.open_banking
    if not activity.open_banking or not others:
        return Reading(None, 0.0, 0.0)
    with_banking = activity.open_banking_days / activity.open_banking
    without = activity.other_days / others
    return Reading(round(with_banking / without - 1, 6), round(with_banking, 6), round(without, 6))


@dataclass(frozen=True, slots=True)
class WindowCompletion:
    worked_on: int
    completed: int


def completion(counts: WindowCompletion) -> Reading:
    return share(counts.completed, counts.worked_on)


@dataclass(frozen=True, slots=True)
class MonthlyTotal:
    """One member's settled transactions of one month in one category on one kind of account,
    money in and money out summed apart (`db/metrics.py`)."""

    user_id: uuid.UUID
    month: date
    category: str
    account_type: str
    account_subtype: str | None
    money_in: int
    money_out: int  # negative


def savings_rates(totals: Iterable[MonthlyTotal]) -> dict[uuid.UUID, dict[date, float]]:
    """Each member's savings rate by month, computed by `figures.monthly_figures` (sums by
    category and account kind give the same figures as the transactions they sum)."""
    entries: dict[uuid.UUID, list[Entry]] = defaultdict(list)
    for total in totals:
        try:
            category = SpendingCategory(total.category)
        except ValueError:
            continue  # a category this version does not know counts nowhere, as in the figures
        kind = account_kind(total.account_type, total.account_subtype)
        for amount in (total.money_in, total.money_out):
            if amount:
                entries[total.user_id].append(Entry(total.month, amount, category, kind))
    return {
        member: {
            figure.month: figure.savings_rate
            for figure in monthly_figures(member_entries)
            if figure.savings_rate is not None
        }
        for member, member_entries in entries.items()
    }


def savings_improvement(rates: dict[uuid.UUID, dict[date, float]], month: date) -> Reading:
    before = add_months(datetime(month.year, month.month, 1), -1).date()
    compared = improved = 0
    for by_month in rates.values():
        if month in by_month and before in by_month:
            compared += 1
            improved += by_month[month] - by_month[before] >= SAVINGS_RATE_STEP - 1e-9
    return share(improved, compared)


@dataclass(frozen=True, slots=True)
class WindowReading:
    window: Window
    reading: Reading


@dataclass(frozen=True, slots=True)
class MetricSeries:
    definition: MetricDefinition
    current: WindowReading  # the last 30 days; for behaviour improvement, the last complete month
    monthly: list[WindowReading]  # oldest first, the current month (to date) last


def success_metrics(
    trailing: Window,
    months: list[Window],
    activity: list[WindowActivity],
    completions: list[WindowCompletion],
    rates: dict[uuid.UUID, dict[date, float]],
) -> list[MetricSeries]:
    """Every metric over the trailing window and each month; `activity` and `completions` hold the
    trailing window's counts first, then each month's."""
    windows = [trailing, *months]
    by_window = {
        MetricId.OPEN_BANKING_ADOPTION: [adoption(counts) for counts in activity],
        MetricId.REAL_TIME_COMPLETION: [completion(counts) for counts in completions],
        MetricId.ENGAGEMENT_UPLIFT: [engagement_uplift(counts) for counts in activity],
        MetricId.COMPARATIVE_ENGAGEMENT: [comparative_engagement(counts) for counts in activity],
    }
    series = [
        MetricSeries(
            BY_ID[metric],
            WindowReading(trailing, readings[0]),
            [WindowReading(window, reading) for window, reading in zip(windows[1:], readings[1:], strict=True)],
        )
        for metric, readings in by_window.items()
    ]
    # A month's savings rate is read once the month is over: the current month has no reading.
    improvement = [
        WindowReading(month, Reading(None, 0, 0) if month.partial else savings_improvement(rates, month.month))
        for month in months
    ]
    complete = [reading for reading in improvement if not reading.window.partial]
    last_complete = complete[-1] if complete else improvement[-1]
    series.append(MetricSeries(BY_ID[MetricId.BEHAVIOUR_IMPROVEMENT], last_complete, improvement))
    return series
