"""Where a member stands against a release of peer statistics. Pure: the member's own figures and a
group's released statistics in, estimates out (the database and the API are the caller's).

A release's statistics are one flat object per group: `savingsRate.p<alpha>`, `salary.p<alpha>`
(percentiles), `spending.<category>.mean` (means), and for each statistic X, `X.error`: the
half-width of its 95 % interval: for a percentile, in percentile points of rank (the true rank
of the released value lies within alpha ± error); for a mean, in its own units. A release made
before errors were published has none: its uncertainty is unknown (values are shown, nothing is
awarded on them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from badges.domain.behaviour import PercentileEstimate
from badges.domain.peers import PeerInput
from badges.insights.peers import SALARY_BOUNDS_MINOR, SAVINGS_RATE_BOUNDS

SAVINGS_RATE = "savingsRate"
SALARY = "salary"
SPENDING = "spending"
# The clamping bounds of each percentile metric: every member's value is inside them, so their
# ranks are exactly 0 and 100 (the ends the interpolation runs to).
BOUNDS: dict[str, tuple[float, float]] = {SAVINGS_RATE: SAVINGS_RATE_BOUNDS, SALARY: SALARY_BOUNDS_MINOR}


@dataclass(frozen=True, slots=True)
class Quantile:
    alpha: float  # the percentile released (95: the value 95 % of the group are at or below)
    value: float
    error: float | None  # the 95 % half-width of its rank, in percentile points; None: unknown


@dataclass(frozen=True, slots=True)
class Mean:
    value: float
    error: float | None  # the 95 % half-width, in the mean's units; None: unknown


@dataclass(frozen=True)
class GroupStatistics:
    """One group's released statistics by metric: percentiles (sorted by alpha) and means."""

    quantiles: dict[str, list[Quantile]] = field(default_factory=dict)
    means: dict[str, Mean] = field(default_factory=dict)

    def metrics(self) -> list[str]:
        return sorted({*self.quantiles, *self.means})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def parse_statistics(stats: Mapping[str, Any]) -> GroupStatistics:
    """The statistics of a released group, read generically: any `<metric>.p<alpha>` is a
    percentile and any `<metric>.mean` a mean, each with its `.error` where the release gave one.
    Values that are null (no candidate won) or not numbers are left out."""
    quantiles: dict[str, list[Quantile]] = {}
    means: dict[str, Mean] = {}
    for key, raw in stats.items():
        if key.endswith(".error"):
            continue
        value = _number(raw)
        if value is None:
            continue
        error = _number(stats.get(f"{key}.error"))
        if error is not None:
            error = abs(error)
        metric, _, statistic = key.rpartition(".")
        if not metric:
            continue
        if statistic == "mean":
            means[metric] = Mean(value, error)
        elif statistic.startswith("p"):
            try:
                alpha = float(statistic[1:])
            except ValueError:
                continue
            if 0 < alpha < 100:
                quantiles.setdefault(metric, []).append(Quantile(alpha, value, error))
    for found in quantiles.values():
        found.sort(key=lambda q: q.alpha)
    return GroupStatistics(quantiles, means)


def estimate_percentile(
    value: float, quantiles: Sequence[Quantile], bounds: tuple[float, float] | None = None
) -> PercentileEstimate | None:
    """The member's percentile rank among the group (the share at or below `value`) from the
    released percentiles, with its 95 % interval. None when nothing is released.

    The estimate: the released percentiles (made non-decreasing first: noise may leave a higher
    one below a lower one) and the metric's clamping bounds (ranks 0 and 100, exactly) are points
    of the group's distribution; the rank is interpolated linearly between the two that bracket
    the value, a and b (percentiles, released values q_a ≤ value ≤ q_b).

    Its uncertainty, as a half-width u around the estimate p, adds two parts:
    - the released percentiles' own errors, interpolated between e_a and e_b like the rank (at a
      released percentile it is exactly its error; at a bound, 0);
    - the interpolation gap: nothing is known of the distribution between q_a and q_b, so the
      straight line may be off; taken as (p - a)(b - p)/(b - a), zero at a released percentile,
      a quarter of the bracket's width midway (1 point between p95 and p99, 11 between the median
      and p95).
    The interval is [p - u, p + u], kept within what is certain: the rank of `value` lies between
    the ranks of q_a and q_b, so within [a - e_a, b + e_b], and within [0, 100]. Where values tie
    (several released percentiles at `value`), the rank lies anywhere between the lowest and the
    highest of them: the estimate is the middle, the interval that span widened by their errors.
    Unknown errors (an older release) leave the interval unknown."""
    if not quantiles:
        return None
    points: list[tuple[float, float, float | None]] = []
    top = -math.inf
    for quantile in sorted(quantiles, key=lambda q: q.alpha):
        top = max(top, quantile.value)
        points.append((quantile.alpha, top, quantile.error))
    if bounds is not None:
        low_bound, high_bound = bounds
        value = min(max(value, low_bound), high_bound)
        points = [(0.0, min(low_bound, points[0][1]), 0.0), *points, (100.0, max(high_bound, points[-1][1]), 0.0)]
    below = [point for point in points if point[1] <= value]
    above = [point for point in points if point[1] >= value]
    if not below:  # under every released value, and no bound to run to
        alpha, _, error = points[0]
        return PercentileEstimate(alpha / 2, 0.0, None if error is None else min(100.0, alpha + error))
    if not above:
        alpha, _, error = points[-1]
        return PercentileEstimate((alpha + 100) / 2, None if error is None else max(0.0, alpha - error), 100.0)
    a, q_a, e_a = below[-1]
    b, q_b, e_b = above[0]
    if a >= b:  # ties: `value` equals released values from percentile b up to a
        estimate = (a + b) / 2
        if e_a is None or e_b is None:
            return PercentileEstimate(estimate)
        return PercentileEstimate(estimate, max(0.0, b - e_b), min(100.0, a + e_a))
    share = (value - q_a) / (q_b - q_a)
    estimate = a + (b - a) * share
    if e_a is None or e_b is None:
        return PercentileEstimate(estimate)
    spread = e_a + (e_b - e_a) * share + (estimate - a) * (b - estimate) / (b - a)
    low = max(estimate - spread, a - e_a, 0.0)
    high = min(estimate + spread, b + e_b, 100.0)
    return PercentileEstimate(estimate, low, high)


def threshold_of(quantiles: Sequence[Quantile], target: int, higher_is_better: bool) -> float | None:
    """The released value a percentile target means: p<target> when higher is better (the top
    (100 - target) % are at or above it), p<100 - target> otherwise."""
    alpha = target if higher_is_better else 100 - target
    return next((q.value for q in quantiles if q.alpha == alpha), None)


Standing = Literal["above", "below", "about the same"]


@dataclass(frozen=True, slots=True)
class MeanComparison:
    difference: float  # the member's value less the group's mean
    # Whether the difference is beyond the mean's 95 % uncertainty; None when that is unknown.
    standing: Standing | None


def compare_to_mean(value: float, mean: Mean) -> MeanComparison:
    """The member's value against a released mean: above or below it only when the difference is
    larger than the mean's 95 % half-width, about the same otherwise."""
    difference = value - mean.value
    if mean.error is None:
        return MeanComparison(difference, None)
    if difference > mean.error:
        return MeanComparison(difference, "above")
    if difference < -mean.error:
        return MeanComparison(difference, "below")
    return MeanComparison(difference, "about the same")


def own_value(member: PeerInput, metric: str) -> float | None:
    """The member's own figure for a released metric (None: they have none, or it is a metric
    this code does not know)."""
    if metric == SAVINGS_RATE:
        return member.savings_rate
    if metric == SALARY:
        return None if member.salary_minor is None else float(member.salary_minor)
    if metric.startswith(f"{SPENDING}."):
        category = metric.partition(".")[2]
        return float(member.spending.get(category, 0)) if member.spending else None
    return None


@dataclass(frozen=True, slots=True)
class Change:
    """The member's own figure now against their previous complete month."""

    previous_month: date
    previous: float
    change: float
    # "better" / "worse" / "unchanged" where the metric has a better direction, None otherwise.
    verdict: str | None


def previous_month_value(document: Mapping[str, Any], month: date, metric: str) -> tuple[date, float] | None:
    """From the member's own evaluation document: the metric's value in the last complete month
    before `month` (the month their figures are of). Savings rate and spending by category are
    kept per month; a typical income is not (None)."""
    previous = None
    for entry in document.get("months", []):
        try:
            when = date.fromisoformat(str(entry.get("month")))
        except ValueError:
            continue
        if entry.get("complete") and when < month and (previous is None or when > previous[0]):
            previous = (when, entry)
    if previous is None:
        return None
    when, entry = previous
    if metric == SAVINGS_RATE:
        found = _number(entry.get("savingsRate"))
    elif metric.startswith(f"{SPENDING}."):
        found = float((entry.get("spendingByCategory") or {}).get(metric.partition(".")[2], 0))
    else:
        found = None
    return None if found is None else (when, found)


def change_of(metric: str, now: float, previous_month: date, previous: float) -> Change:
    """How the member's figure moved since their previous month: better or worse for the savings
    rate (higher is better); spending is only up or down (what is better depends on the member)."""
    change = now - previous
    verdict = None
    if metric == SAVINGS_RATE:
        verdict = "better" if change > 0 else "worse" if change < 0 else "unchanged"
    return Change(previous_month, previous, change, verdict)
