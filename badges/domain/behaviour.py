"""Financial rule kinds decided on bank data: milestones, avoidance, improvement, peer comparison.

Pure functions of summarised data (totals per month, dated categories, released percentiles);
the bank-data workflows gather the inputs and act on the answers. Amounts are integer minor units.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field, field_validator

from badges.domain.definitions import (
    HARMFUL_CATEGORIES,
    AvoidanceRule,
    BehaviorTrackingConfig,
    ComparativeConfig,
    ComparativeRule,
    ImprovementRule,
    MilestoneRule,
    Period,
)


class BehaviourDataError(ValueError):
    """Inputs that cannot describe a member's history (a month given twice, coverage ending
    before it starts)."""


# --- milestone -------------------------------------------------------------------------------


def milestone_reached(rule: MilestoneRule, total_saved_minor: int) -> bool:
    return total_saved_minor >= rule.target_minor


def milestone_progress(rule: MilestoneRule, total_saved_minor: int) -> int:
    """Progress towards `rule.target_minor`: the total saved, within 0 and the target."""
    return min(max(total_saved_minor, 0), rule.target_minor)


# --- avoidance -------------------------------------------------------------------------------


def days_avoided(
    rule: AvoidanceRule, transactions: Iterable[tuple[date, str]], coverage_start: date, coverage_end: date
) -> int:
    """Consecutive covered days, ending at `coverage_end`, without a transaction in the rule's
    category; at most `window_days` (its progress value). Transactions outside the coverage are
    ignored. Days are inclusive: coverage from the 1st to the 30th is 30 days."""
    if coverage_end < coverage_start:
        raise BehaviourDataError(f"coverage ends ({coverage_end}) before it starts ({coverage_start})")
    covered = (coverage_end - coverage_start).days + 1
    latest = max(
        (day for day, category in transactions if category == rule.category and coverage_start <= day <= coverage_end),
        default=None,
    )
    clean = covered if latest is None else (coverage_end - latest).days
    return min(clean, rule.window_days)


def avoidance_met(
    rule: AvoidanceRule, transactions: Iterable[tuple[date, str]], coverage_start: date, coverage_end: date
) -> bool:
    """No transaction of the category in the last `window_days` days of covered data, and at least
    `window_days` days covered (too short a history earns nothing yet)."""
    return days_avoided(rule, transactions, coverage_start, coverage_end) >= rule.window_days


def clean_windows_completed(
    rule: AvoidanceRule, transactions: Iterable[tuple[date, str]], coverage_start: date, coverage_end: date
) -> list[date]:
    """The day each clean stretch of the covered days (a run without a transaction in the rule's
    category) reached `window_days`, oldest first: the avoidance windows the history completed,
    the current stretch's included. A stretch keeps its day however long it then lasts, so
    deciding the same history again, on a later day, finds the same windows."""
    if coverage_end < coverage_start:
        raise BehaviourDataError(f"coverage ends ({coverage_end}) before it starts ({coverage_start})")
    days = sorted(
        {day for day, category in transactions if category == rule.category and coverage_start <= day <= coverage_end}
    )
    completed = []
    first_clean = coverage_start
    for end_of_stretch in [*days, coverage_end + timedelta(days=1)]:
        if (end_of_stretch - first_clean).days >= rule.window_days:
            completed.append(first_clean + timedelta(days=rule.window_days - 1))
        first_clean = end_of_stretch + timedelta(days=1)
    return completed


# --- improvement -----------------------------------------------------------------------------


class MonthlyCategoryTotals(BaseModel):
    """One calendar month of a member's categorised bank data: totals per category (minor units,
    absent = 0) and how many of the month's days the synced data cover."""

    model_config = ConfigDict(frozen=True)

    month: date  # the first of the month
    totals_minor: dict[str, int] = Field(default_factory=dict)
    covered_days: int = Field(ge=0, le=31)

    @field_validator("month")
    @classmethod
    def _first_of_month(cls, month: date) -> date:
        if month.day != 1:
            raise ValueError("month must be the first day of the month")
        return month

    @property
    def complete(self) -> bool:
        return self.covered_days >= calendar.monthrange(self.month.year, self.month.month)[1]


class ImprovementResult(BaseModel):
    """The last complete tracking period against the one before it.

    `current`/`previous` are the category's totals (None when that period is not complete in the
    data); `change_fraction` is the relative improvement (positive = better: less spent on a
    harmful category, more saved), None when it cannot be computed (a missing period, or a
    previous total of 0)."""

    period: Period
    current_start: date | None
    current: int | None
    previous: int | None
    change_fraction: float | None
    met: bool


def period_start(month: date, period: Period) -> date:
    """The first month of the calendar-aligned period (month, quarter, year) `month` falls in."""
    if period == "monthly":
        return month.replace(day=1)
    if period == "quarterly":
        return date(month.year, (month.month - 1) // 3 * 3 + 1, 1)
    return date(month.year, 1, 1)


def _months_in(period: Period) -> int:
    return {"monthly": 1, "quarterly": 3, "yearly": 12}[period]


def _shift_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def improvement(
    rule: ImprovementRule, config: BehaviorTrackingConfig, months: Sequence[MonthlyCategoryTotals]
) -> ImprovementResult:
    """Compare the category's total in the last COMPLETE tracking period with the calendar period
    just before it (which must be complete too).

    A period is complete when every one of its months is in `months` and fully covered. For a
    harmful category (HARMFUL_CATEGORIES) lower is better; for savings higher is better. Met when
    the relative improvement reaches `config.improvement_threshold` (compared exactly, no float
    rounding at the boundary). A previous total of 0 has no relative change: for savings, any
    positive current total then counts as met (something saved after nothing saved beats every
    threshold); for a harmful category nothing can fall below 0, so it is not met (staying at zero
    is what avoidance badges reward). A negative previous total (net withdrawals from savings) is
    measured against its magnitude.
    """
    period = config.tracking_period
    totals = _complete_periods(rule, period, months)
    if not totals:
        return ImprovementResult(
            period=period, current_start=None, current=None, previous=None, change_fraction=None, met=False
        )
    latest = max(totals)
    return _compared(rule, config, latest, totals)


def improvements(
    rule: ImprovementRule, config: BehaviorTrackingConfig, months: Sequence[MonthlyCategoryTotals]
) -> list[ImprovementResult]:
    """Every complete tracking period against the one before it (where that is complete too),
    oldest first, as `improvement` compares the latest: the windows a history decides, so a
    backfill (or late data in an old window) finds each improvement that live tracking would
    have found when its period closed."""
    period = config.tracking_period
    totals = _complete_periods(rule, period, months)
    return [
        _compared(rule, config, start, totals)
        for start in sorted(totals)
        if _shift_months(start, -_months_in(period)) in totals
    ]


def _complete_periods(
    rule: ImprovementRule, period: Period, months: Sequence[MonthlyCategoryTotals]
) -> dict[date, int]:
    """The category's total in each complete calendar period, by the period's first month."""
    by_month: dict[date, MonthlyCategoryTotals] = {}
    for month in months:
        if month.month in by_month:
            raise BehaviourDataError(f"month {month.month:%Y-%m} is given twice")
        by_month[month.month] = month

    def total(start: date) -> int | None:
        members = [by_month.get(_shift_months(start, n)) for n in range(_months_in(period))]
        if any(month is None or not month.complete for month in members):
            return None
        return sum(month.totals_minor.get(rule.category, 0) for month in members if month is not None)

    starts = {period_start(month, period) for month in by_month}
    return {start: amount for start in starts if (amount := total(start)) is not None}


def _compared(
    rule: ImprovementRule, config: BehaviorTrackingConfig, start: date, totals: Mapping[date, int]
) -> ImprovementResult:
    """The period from `start` against the one before it (`improvement` says how)."""
    period = config.tracking_period
    current = totals[start]
    previous = totals.get(_shift_months(start, -_months_in(period)))
    if previous is None:
        return ImprovementResult(
            period=period, current_start=start, current=current, previous=None, change_fraction=None, met=False
        )
    better = previous - current if rule.category in HARMFUL_CATEGORIES else current - previous
    if previous == 0:
        met = rule.category not in HARMFUL_CATEGORIES and current > 0
        return ImprovementResult(
            period=period, current_start=start, current=current, previous=0, change_fraction=None, met=met
        )
    change = Fraction(better, abs(previous))
    return ImprovementResult(
        period=period,
        current_start=start,
        current=current,
        previous=previous,
        change_fraction=float(change),
        met=change >= Fraction(str(config.improvement_threshold)),
    )


# --- comparative -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PercentileEstimate:
    """A member's estimated percentile rank in a peer group: the share of the group at or below
    their value (0-100), and the 95 % interval around it; `low` and `high` are None when the
    release says nothing of its uncertainty (releases made before it did)."""

    percentile: float
    low: float | None = None
    high: float | None = None

    @property
    def uncertainty_known(self) -> bool:
        return self.low is not None and self.high is not None

    def flipped(self) -> PercentileEstimate:
        """The same standing counted from the other end (where lower is better)."""
        return PercentileEstimate(
            100 - self.percentile,
            None if self.high is None else 100 - self.high,
            None if self.low is None else 100 - self.low,
        )


def comparative_instances(
    rule: ComparativeRule,
    config: ComparativeConfig,
    member_value: float,
    released_percentiles: Mapping[int, float],
    standing: PercentileEstimate | None,
) -> list[str]:
    """The award instances (`p95`, `p99`, ascending) a member clears against a peer release, by
    the release's uncertainty. `released_percentiles[target]` is the released threshold for a
    percentile target: the value the best (100 - target) % of the group are at or beyond, in the
    metric's better direction; `standing` is the member's estimated percentile rank in the group,
    counted in the metric's own direction (higher values rank higher), with its 95 % interval.

    A target is cleared when both hold: the member is at least as good as the released value (≥
    it when higher is better, ≤ it otherwise), and the low end of their rank's interval (counted
    in the better direction) is at or above the target. So a member inside the band the noise
    leaves around the threshold gets nothing. A target without a released value (a suppressed
    group, a percentile not released) or with a NaN, and a standing whose uncertainty is unknown,
    clear nothing."""
    if standing is None or not standing.uncertainty_known:
        return []
    better = standing if rule.higher_is_better else standing.flipped()
    assert better.low is not None
    reached = []
    for target in config.percentile_targets:
        threshold = released_percentiles.get(target)
        if threshold is None:
            continue
        good = member_value >= threshold if rule.higher_is_better else member_value <= threshold
        if good and better.low >= target:  # False for NaN on either side
            reached.append(f"p{target}")
    return reached
