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

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from badges.domain.behaviour import PercentileEstimate, comparative_instances
from badges.domain.categories import SpendingCategory
from badges.domain.definitions import BadgeDefinition, ComparativeRule
from badges.domain.peers import PeerInput
from badges.insights.peers import (
    FALSE_PASS,
    HIERARCHIES,
    MAX_MEMBERS,
    SALARY_BOUNDS_MINOR,
    SALARY_CANDIDATES,
    SAVINGS_RATE_BOUNDS,
    SAVINGS_RATE_CANDIDATES,
    Allocation,
    Level,
    describe,
    key_levels,
    levels,
    member_keys,
    plan_for,
)

SAVINGS_RATE = "savingsRate"
SALARY = "salary"
SPENDING = "spending"
# The clamping bounds of each percentile metric: every member's value is inside them, so their
# ranks are exactly 0 and 100 (the ends the interpolation runs to).
BOUNDS: dict[str, tuple[float, float]] = {SAVINGS_RATE: SAVINGS_RATE_BOUNDS, SALARY: SALARY_BOUNDS_MINOR}


# --- a member's groups ------------------------------------------------------------------------


def dimensions() -> list[str]:
    """The dimensions with a hierarchy of public keys."""
    return list(HIERARCHIES)


def hierarchy(dimension: str) -> tuple[Level, ...] | None:
    """The dimension's levels, finest first (None: a dimension without a hierarchy here)."""
    return levels(dimension) if dimension in HIERARCHIES else None


def member_groups(
    member: PeerInput, other: Mapping[str, Any], dimensions: Sequence[str]
) -> dict[str, list[tuple[str, str]]]:
    """The (level, key) groups of each dimension the member belongs to, finest first: their key
    at each level, as the release computes it (`peer_frame`), and then everyone. A release
    compares them within the first of these it published. A dimension without a hierarchy here
    is read from the member's row: its key in the column named as the dimension, one level.

    Groups depend on a member's keys only, never on their figures: answers are kept by keys (a
    frame per request cost about as much as the rest of a comparison's own work)."""
    keys = {f.name: getattr(member, f.name) for f in dataclasses.fields(member) if f.name not in _FIGURES}
    try:
        cache_key = (tuple(keys.items()), tuple(sorted(other.items())), tuple(dimensions))
        hash(cache_key)
    except TypeError:  # a key that is not hashable: no caching
        return _member_groups(PeerInput(**keys), other, dimensions)
    found = _GROUPS.get(cache_key)
    if found is None:
        found = _member_groups(PeerInput(**keys), other, dimensions)
        if len(_GROUPS) >= _GROUPS_KEPT:
            _GROUPS.clear()
        _GROUPS[cache_key] = found
    return {dimension: list(groups) for dimension, groups in found.items()}


# What a member's groups do not depend on.
_FIGURES = frozenset({"month", "savings_rate", "salary_minor", "spending"})
_GROUPS: dict[Any, dict[str, list[tuple[str, str]]]] = {}
_GROUPS_KEPT = 100_000


def _member_groups(
    member: PeerInput, other: Mapping[str, Any], dimensions: Sequence[str]
) -> dict[str, list[tuple[str, str]]]:
    """The member's key at each level of each dimension's hierarchy (`member_keys`, which agrees
    with the release's `peer_frame`; a member's groups never depend on their figures, so a member
    the release would leave out for want of one still has them), finest first; a dimension
    without a hierarchy here read from `other`, one level."""
    keys, key_columns = member_keys(member), key_levels()
    found: dict[str, list[tuple[str, str]]] = {}
    for dimension in dimensions:
        chain = hierarchy(dimension)
        if chain is None:
            found[dimension] = [] if (key := other.get(dimension)) is None else [(dimension, str(key))]
            continue
        found[dimension] = [
            (level.name, str(key))
            for level in chain
            if (key := keys.get(level.name) if level.name in key_columns else other.get(level.name)) is not None
        ]
    return found


def members_groups(
    members: Sequence[tuple[PeerInput, Mapping[str, Any]]], dimension: str
) -> list[list[tuple[str, str]]]:
    """The groups of one dimension of many members (the award step's), each as `member_groups`
    finds one member's."""
    return [_member_groups(member, other, [dimension])[dimension] for member, other in members]


def level_of(dimension: str, key: str) -> str | None:
    """The finest level of the dimension that has `key` among its public keys (None: none has)."""
    for level in hierarchy(dimension) or ():
        if key in _keys(dimension, level.name):
            return level.name
    return None


def parents(dimension: str, level: str, key: str) -> list[tuple[str, str]]:
    """The groups above (level, key) in the dimension, nearest first, up to everyone."""
    found = hierarchy(dimension) or ()
    names = [each.name for each in found]
    if level not in names:
        return []
    chain = []
    for depth in range(names.index(level), len(found) - 1):
        if key not in _keys(dimension, found[depth].name):  # not a key of its level: no parents
            break
        key = found[depth].parent(key)
        if not key:
            break
        chain.append((found[depth + 1].name, key))
    return chain


_KEY_SETS: dict[tuple[str, str], frozenset[str]] = {}


def _keys(dimension: str, level: str) -> frozenset[str]:
    found = _KEY_SETS.get((dimension, level))
    if found is None:
        found = next(frozenset(each.keys) for each in levels(dimension) if each.name == level)
        _KEY_SETS[dimension, level] = found
    return found


# --- released statistics -----------------------------------------------------------------------


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


# --- comparative badges -------------------------------------------------------------------------

# A comparative rule's metric, as releases name it (the others are not released).
RELEASED_METRIC = {"savings_rate": SAVINGS_RATE}


@dataclass(frozen=True)
class ComparativeDecision:
    """The targets a member cleared in a release (`p95`, `p99`) and what decided it: the group
    where they cleared the most, their value and their estimated percentile with its interval."""

    instances: list[str]
    dimension: str
    level: str
    key: str
    value: float
    percentile: float
    low: float | None
    high: float | None

    def document(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "level": self.level,
            "key": self.key,
            "value": self.value,
            "percentile": self.percentile,
            "low": self.low,
            "high": self.high,
        }


def decide_comparative(
    badge: BadgeDefinition, value: float, groups: Sequence[tuple[str, str, str, GroupStatistics]]
) -> ComparativeDecision | None:
    """Which of the badge's targets the member clears in any of their released groups (dimension,
    level, key, statistics) of its `comparisonGroups`, by the release's uncertainty
    (`comparative_instances`). None: none cleared."""
    rule, config = badge.rule, badge.config.comparative_analytics
    if not isinstance(rule, ComparativeRule) or config is None or rule.metric not in RELEASED_METRIC:
        return None
    metric = RELEASED_METRIC[rule.metric]
    cleared: set[str] = set()
    best: ComparativeDecision | None = None
    for dimension, level, key, stats in groups:
        if dimension not in config.comparison_groups:
            continue
        quantiles = stats.quantiles.get(metric, [])
        thresholds = {
            target: found
            for target in config.percentile_targets
            if (found := threshold_of(quantiles, target, rule.higher_is_better)) is not None
        }
        estimate = estimate_percentile(value, quantiles, BOUNDS.get(metric))
        instances = comparative_instances(rule, config, value, thresholds, estimate)
        if not instances or estimate is None:
            continue
        cleared.update(instances)
        if best is None or len(instances) > len(best.instances):
            best = ComparativeDecision(
                instances, dimension, level, key, value, estimate.percentile, estimate.low, estimate.high
            )
    if best is None:
        return None
    return dataclasses.replace(best, instances=sorted(cleared, key=lambda name: int(name[1:])))


def lowest_threshold(badge: BadgeDefinition, groups: Sequence[tuple[str, GroupStatistics]]) -> float | None:
    """The lowest released value any member must reach for the badge in any of the groups
    (dimension, statistics): members below it clear nothing (infinite: nothing released to clear).
    None: no such bound (a metric where lower is better)."""
    rule, config = badge.rule, badge.config.comparative_analytics
    if not isinstance(rule, ComparativeRule) or config is None or not rule.higher_is_better:
        return None
    metric = RELEASED_METRIC.get(rule.metric)
    values = [
        found
        for dimension, stats in groups
        if dimension in config.comparison_groups
        for target in config.percentile_targets
        if (found := threshold_of(stats.quantiles.get(metric or "", []), target, True)) is not None
    ]
    return min(values, default=math.inf)


def is_metric(metric: str) -> bool:
    """A metric a release may carry: `savingsRate`, `salary` or `spending.<category>`."""
    if metric in (SAVINGS_RATE, SALARY):
        return True
    prefix, _, category = metric.partition(".")
    return prefix == SPENDING and category in {c.value for c in SpendingCategory}


# --- in words -----------------------------------------------------------------------------------

_NAMES = {SAVINGS_RATE: "savings rate", SALARY: "typical monthly income"}


def _amount(metric: str, value: float) -> str:
    if metric == SAVINGS_RATE:
        return f"{value * 100:.1f} %"
    return f"£{value / 100:,.2f}"


def _ordinal(value: float) -> str:
    number = round(value)
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def summary(
    metric: str,
    value: float | None,
    improvement: Any,
    standing: Any,
    against_mean: str | None,
) -> str:
    """One or two sentences for the member: their own change first, then where they stand (with
    how sure that is). `improvement` and `standing` are the route's `Improvement` / `Standing`."""
    name = _NAMES.get(metric) or f"spending on {metric.partition('.')[2].replace('_', ' ')}"
    if value is None:
        return f"We have no {name} of yours to compare yet."
    parts = []
    if improvement is not None:
        when = improvement.previous_month.strftime("%B")
        if improvement.change == 0:
            parts.append(f"Your {name} is {_amount(metric, value)}, the same as in {when}.")
        else:
            moved = "up" if improvement.change > 0 else "down"
            parts.append(
                f"Your {name} is {_amount(metric, value)}, {moved} from {_amount(metric, improvement.previous)}"
                f" in {when}."
            )
    else:
        parts.append(f"Your {name} is {_amount(metric, value)}.")
    if standing is not None:
        around = f"around the {_ordinal(standing.percentile)} percentile of people like you"
        if standing.uncertainty_known:
            parts.append(
                f"That puts you {around} (somewhere between the {_ordinal(standing.low)} and the"
                f" {_ordinal(standing.high)}, given the noise that keeps everyone's figures private)."
            )
        else:
            parts.append(f"That puts you {around} (this release does not say how precise that is).")
    elif against_mean is not None:
        parts.append(
            "That is about the same as people like you on average."
            if against_mean == "about the same"
            else f"That is {against_mean} the average of people like you."
        )
    return " ".join(parts)


def methodology_figures(
    catalogue: Sequence[BadgeDefinition],
    *,
    epsilon: float,
    yearly_epsilon: float,
    budget_period_days: int,
    min_group_size: int,
    interval_hours: float,
    allocation: Allocation,
    released: Sequence[str],
) -> dict[str, Any]:
    """The figures the methodology states, from the code's constants, the deployment's settings
    and the comparative badges in force (which decide what a release computes)."""
    plan = plan_for(catalogue, epsilon, min_group_size, allocation, released)
    shares = describe(plan)["shares"]
    return {
        "dimensions": {name: [level.name for level in levels(name)] for name in HIERARCHIES},
        "releasedDimensions": list(plan.dimensions),
        "percentiles": {dimension: plan.alphas(dimension) for dimension in plan.dimensions},
        "targets": {dimension: list(alphas) for dimension, alphas in plan.targets},
        "bounds": {"savingsRate": list(SAVINGS_RATE_BOUNDS), "salaryMinor": list(SALARY_BOUNDS_MINOR)},
        "candidates": {
            "savingsRate": {
                "count": len(SAVINGS_RATE_CANDIDATES),
                # Fine where most members are, coarse in the tails (insights/peers.py).
                "fineStep": round(min(b - a for a, b in itertools.pairwise(SAVINGS_RATE_CANDIDATES)), 4),
                "coarseStep": round(max(b - a for a, b in itertools.pairwise(SAVINGS_RATE_CANDIDATES)), 4),
                "fineFrom": _fine_range()[0],
                "fineTo": _fine_range()[1],
            },
            "salaryMinor": {
                "count": len(SALARY_CANDIDATES),
                "ratio": round(SALARY_CANDIDATES[1] / SALARY_CANDIDATES[0], 4),
            },
        },
        "epsilonPerRelease": plan.epsilon,
        "epsilonPerReleaseSetting": epsilon,
        "yearlyEpsilon": yearly_epsilon,
        "budgetPeriodDays": budget_period_days,
        "releaseEveryHours": interval_hours,
        "minGroupSize": plan.min_group_size,
        "falsePass": FALSE_PASS,
        "shares": shares,
        "maxMembers": MAX_MEMBERS,
        "delta": 0.0,
    }


def _fine_range() -> tuple[float, float]:
    """The span of the savings-rate grid at its finest step."""
    steps = list(itertools.pairwise(SAVINGS_RATE_CANDIDATES))
    fine = min(b - a for a, b in steps)
    inside = [(a, b) for a, b in steps if b - a <= fine + 1e-9]
    return inside[0][0], inside[-1][1]


def methodology_text(figures: Mapping[str, Any]) -> str:
    """The methodology in plain words (Markdown), every figure taken from `figures`."""
    dimensions = "; ".join(f"{name}: {' → '.join(names)}" for name, names in figures["dimensions"].items())
    released = ", ".join(figures["releasedDimensions"]) or "none"
    rate_low, rate_high = figures["bounds"]["savingsRate"]
    pay_low, pay_high = figures["bounds"]["salaryMinor"]
    rates, pay = figures["candidates"]["savingsRate"], figures["candidates"]["salaryMinor"]
    epsilon, yearly, days = figures["epsilonPerRelease"], figures["yearlyEpsilon"], figures["budgetPeriodDays"]
    shares = figures["shares"]
    per_year = int(yearly // epsilon) if epsilon else 0
    every_days = days / per_year if per_year else float(days)
    percentiles = "; ".join(
        f"{dimension}: {', '.join(f'p{alpha}' for alpha in alphas)}"
        for dimension, alphas in figures["percentiles"].items()
    )
    targets = [
        f"{dimension} p{alphas[0]} {shares[dimension][f'savingsRate.p{alphas[0]}']:.3g}"
        for dimension, alphas in figures["targets"].items()
        if alphas
    ]
    budget_split = (
        f"the roll-up counts together ε = {shares['counts']:.3g}"
        + (f"; the percentiles badges are decided on the most (ε each: {', '.join(targets)})" if targets else "")
        + "; every other statistic (counts, quartiles, income, spending means) a small share"
    )
    return f"""# How peer comparisons work

**What is compared.** Members who grant `peer_comparison` consent are counted: their last complete
month's savings rate and spending by category, and their typical monthly income. Nobody is
compared with another person: each member is compared with statistics released for a whole group,
made with differential privacy (OpenDP), so that no release says anything much about anyone.

**Groups.** A member's groups come from their demographics (with `demographics` consent), each a
hierarchy from narrow to wide ({dimensions}). The group keys are public lists (every postcode
district there can be, every bracket), never taken from the data. Released now: {released}.

**Roll-up and suppression.** A release first takes a noisy count of every group. A group is
published when its noisy count, less what its published sub-groups already cover, reaches
{figures["minGroupSize"]} members plus a margin for the noise, chosen so that a group smaller than that
gets through with probability at most {figures["falsePass"]:.0%} at a level. A member whose group is too
small is compared within the next group up (their district's area, then region, then everyone).
A group too small even as everyone is not published, and the member is told so.

**Bounds.** Values are clamped before anything is computed: savings rate to [{rate_low:g}, {rate_high:g}],
monthly income to £{pay_low / 100:,.0f} to £{pay_high / 100:,.0f}. Percentiles are chosen by the exponential
mechanism from a grid of candidates: {rates["count"]} savings rates (every {rates["fineStep"] * 100:g}
percentage point from {rates["fineFrom"]:g} to {rates["fineTo"]:g}, every {rates["coarseStep"] * 100:g} outside) and
{pay["count"]} incomes each about {(pay["ratio"] - 1) * 100:.1f} % above the last. Each member is one row, so
counts at most once in any group.

**Budget and pacing.** A release spends at most ε = {epsilon:g} (δ = {figures["delta"]:g}: the guarantee is
pure ε), shared among its statistics by what they are used for: {budget_split}.
Every member may be in every release, so the releases' ε add up: over any {days} days at most
ε = {yearly:g} per member, about {per_year} releases. A release past that is refused, and the refusal
recorded. The schedule looks every {figures["releaseEveryHours"]:g} hours and releases only when the
budget has accrued enough for it: about every {every_days:.0f} days. Released savings-rate
percentiles: {percentiles}.

**Uncertainty.** Each released value comes with the half-width of its 95 % interval: for a
percentile, in percentile points of rank (the released p95 is, 19 times in 20, the value of
someone between the 95 - e and 95 + e percentile); for a mean, in its own units. Your own
percentile is interpolated between the released ones (and the bounds), and its interval adds
their errors and the gap between them (nothing is known of the group between two released
percentiles). A spending figure is above or below the group's mean only when the difference is
larger than the mean's uncertainty. A release made before errors were published shows values
without an interval.

**Badges.** A comparative badge (top 5 %, top 1 %) is awarded by a release only when the member's
value is at least the released percentile **and** the low end of their percentile's interval is at
or above the target: inside the band the noise leaves around the threshold, nothing is awarded.
"""
