"""Bank-data badges decided: every financial rule kind against one snapshot of a member's figures.
Pure (no clock: the snapshot says what day it is in the member's time zone).

A verdict says where the member stands (value of target) and which award instances the data earn
now: every complete window of the history is decided, not only the latest, so linking a bank (the
backfill) or late data in an old window earn what live tracking would have earned when each
window closed. The member's badge workflow (the one writer of their progress and awards) records
each instance once. A decision that the data cannot yet support waits, with the reason: too little
history, data of poor quality, or a low-confidence category that could tip it (the member is
asked to check it).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction

from pydantic import BaseModel, ConfigDict

from badges.domain.behaviour import (
    MonthlyCategoryTotals,
    clean_windows_completed,
    days_avoided,
    improvement,
    improvements,
    milestone_progress,
)
from badges.domain.definitions import (
    AvoidanceRule,
    BadgeDefinition,
    BufferRule,
    GoalRule,
    ImprovementRule,
    MilestoneRule,
    SustainedRule,
)
from badges.domain.figures import MonthFigures
from badges.domain.rules import Award, BadgeState, Evaluation, ProgressUpdate, RuleState, award

SINGLE = "1"
# The seed's behaviour categories as the spending taxonomy names them.
TAXONOMY_NAME = {"junk_food": "fast_food"}


@dataclass(frozen=True)
class FinancialSnapshot:
    today: date  # in the member's time zone
    figures: Sequence[MonthFigures]  # every month of the history, oldest first
    # First and last day the synced history covers: the last is the last day that is over (the
    # day before `today`), so a window ending today is not complete yet.
    coverage: tuple[date, date] | None
    # Days with a transaction in each category the avoidance rules read (gambling, fast_food).
    category_days: Mapping[str, Sequence[date]] = field(default_factory=dict)
    total_saved_minor: int = 0  # net saved over the whole history
    liquid_savings_minor: int | None = None  # savings accounts' balances, where linked
    goals_reached: Sequence[str] = ()  # ids of the member's goals that are reached
    # Why decisions must wait for better data (None: quality is good enough).
    quality_problem: str | None = None
    # Categories with a transaction whose category is not confident: decisions that read them wait.
    unsure_categories: frozenset[str] = frozenset()
    # Savings put in during the last week, by month: left out of `figures` and `total_saved_minor`
    # (a deposit may yet be the first leg of a round trip, `badges/insights/round_trips.py`); a
    # month they alone would carry over a savings rate waits for them.
    unsettled_savings: Mapping[date, int] = field(default_factory=dict)


class Verdict(BaseModel):
    """Where a member stands on one bank-data badge (it crosses Temporal to their badge workflow)."""

    model_config = ConfigDict(frozen=True)

    badge_id: str
    version: int
    value: int
    target: int
    earned: list[str]  # award instances the data earn now (the writer records each once)
    waiting: str | None = None  # why nothing is decided yet


def history_months(snapshot: FinancialSnapshot) -> int:
    return sum(1 for month in snapshot.figures if month.complete)


def decide(definitions: Sequence[BadgeDefinition], snapshot: FinancialSnapshot) -> list[Verdict]:
    """A verdict for every active badge decided on the member's own bank data."""
    verdicts = []
    for badge in definitions:
        rule = badge.rule
        if not badge.active or not isinstance(
            rule, MilestoneRule | AvoidanceRule | ImprovementRule | SustainedRule | BufferRule | GoalRule
        ):
            continue
        verdict = _decide(badge, snapshot)
        verdicts.append(verdict)
    return verdicts


def _decide(badge: BadgeDefinition, snapshot: FinancialSnapshot) -> Verdict:
    value, target, earned = _measure(badge, snapshot)
    waiting = _why_wait(badge, snapshot)
    if waiting is not None:
        earned = []
    return Verdict(
        badge_id=badge.badge_id, version=badge.version, value=value, target=target, earned=earned, waiting=waiting
    )


def _why_wait(badge: BadgeDefinition, snapshot: FinancialSnapshot) -> str | None:
    rule = badge.rule
    if isinstance(rule, GoalRule):
        return None  # a goal is the member's own measure, not a judgement of their history
    needed = badge.config.open_banking.minimum_history_months if badge.config.open_banking else 1
    if history_months(snapshot) < needed:
        return f"needs {needed} complete months of bank history; {history_months(snapshot)} so far"
    if snapshot.quality_problem is not None:
        return f"waiting for better data: {snapshot.quality_problem}"
    read = _categories_read(rule)
    unsure = sorted(read & snapshot.unsure_categories)
    if unsure:
        return f"please check transactions that may be {', '.join(unsure)}: their category is not certain"
    return None


def _categories_read(rule: object) -> set[str]:
    if isinstance(rule, AvoidanceRule | ImprovementRule):
        category = TAXONOMY_NAME.get(rule.category, rule.category)
        return {"savings"} if category in ("savings", "spending") else {category}
    if isinstance(rule, MilestoneRule | SustainedRule | BufferRule):
        return {"savings"}
    return set()


def _measure(badge: BadgeDefinition, snapshot: FinancialSnapshot) -> tuple[int, int, list[str]]:
    rule = badge.rule
    if isinstance(rule, MilestoneRule):
        value = milestone_progress(rule, snapshot.total_saved_minor)
        return value, rule.target_minor, [SINGLE] if value >= rule.target_minor else []
    if isinstance(rule, AvoidanceRule):
        coverage = snapshot.coverage
        if coverage is None or coverage[1] < coverage[0]:
            return 0, rule.window_days, []
        category = TAXONOMY_NAME.get(rule.category, rule.category)
        days = [(day, rule.category) for day in snapshot.category_days.get(category, ())]
        value = days_avoided(rule, days, *coverage)
        # Each clean stretch is its own award, named by the day it was complete: the same on
        # every later evaluation, and every stretch of the history (a backfill) earns one.
        return value, rule.window_days, [day.isoformat() for day in clean_windows_completed(rule, days, *coverage)]
    if isinstance(rule, ImprovementRule):
        tracking = badge.config.behavior_tracking
        assert tracking is not None  # BadgeSpec checks it
        category = TAXONOMY_NAME.get(rule.category, rule.category)
        months = [_totals(month, category, rule.category) for month in snapshot.figures]
        result = improvement(rule, tracking, months)
        percent = round(result.change_fraction * 100) if result.change_fraction is not None else 0
        target = round(tracking.improvement_threshold * 100)
        # Progress is the latest complete period's; each complete period that improved on the one
        # before is its own award (named by its first day), the history's older ones included.
        earned = [
            found.current_start.isoformat()
            for found in improvements(rule, tracking, months)
            if found.met and found.current_start is not None
        ]
        return max(0, min(percent, target)), target, earned
    if isinstance(rule, SustainedRule):
        run = longest = 0
        for month in snapshot.figures:
            if not month.complete:
                continue
            rate = month.savings_rate
            meets = rate is not None and rate >= rule.minimum
            if not meets and _met_once_settled(month, snapshot.unsettled_savings, rule.minimum):
                continue  # decided once its last week's savings have stayed a week
            run = run + 1 if meets else 0
            longest = max(longest, run)
        # Progress is the current run; a run that reached the target, now or earlier in the
        # history, earns the badge (once).
        return min(run, rule.months), rule.months, [SINGLE] if longest >= rule.months else []
    if isinstance(rule, BufferRule):
        recent = [month for month in snapshot.figures if month.complete][-3:]
        if not recent or snapshot.liquid_savings_minor is None:
            return 0, 1, []
        usual = sum(month.spending_minor for month in recent) / len(recent)
        needed = max(1, round(usual * rule.months))
        held = max(0, snapshot.liquid_savings_minor)
        return min(held, needed), needed, [SINGLE] if held >= needed else []
    if isinstance(rule, GoalRule):
        reached = list(snapshot.goals_reached)
        return min(len(reached), 1), 1, reached
    raise TypeError(f"{badge.badge_id}: {rule.kind} is not decided on a member's own bank data")


def _totals(month: MonthFigures, category: str, key: str) -> MonthlyCategoryTotals:
    """The month's total of a taxonomy category (or all spending, or savings), under the rule's name."""
    if category == "spending":
        total = month.spending_minor
    elif category == "savings":
        total = month.savings_minor
    else:
        total = month.spending_by_category.get(category, 0)
    days = calendar.monthrange(month.month.year, month.month.month)[1]
    return MonthlyCategoryTotals(
        month=month.month, totals_minor={key: total}, covered_days=min(month.covered_days, days)
    )


def _met_once_settled(month: MonthFigures, unsettled: Mapping[date, int], minimum: float) -> bool:
    """Whether the month's savings rate would reach `minimum` with its unsettled savings (the rate
    as the figures compute it)."""
    waiting = unsettled.get(month.month, 0)
    if waiting <= 0 or month.income_minor <= 0:
        return False
    return float(Fraction(month.savings_minor + waiting, month.income_minor)) >= minimum


def apply_verdicts(
    state: BadgeState,
    verdicts: Sequence[Verdict],
    catalogue: Sequence[BadgeDefinition],
    seq: int,
    now: datetime,
) -> Evaluation:
    """Record a behaviour evaluation in the member's badge state (the one writer of their progress
    and awards). Evaluations are numbered: one older than the last applied is dropped whole, so
    progress never moves back on a stale write. Each earned instance is awarded once, ever, as of
    `now`; a verdict for a badge no longer in the catalogue, or of another version, is dropped."""
    if seq <= state.financial_seq:
        return Evaluation(state=state, progress=[], awards=[], duplicates=[])
    by_id = {badge.badge_id: badge for badge in catalogue if badge.active}
    badges = dict(state.badges)
    progress: list[ProgressUpdate] = []
    awards: list[Award] = []
    for verdict in verdicts:
        badge = by_id.get(verdict.badge_id)
        if badge is None or badge.version != verdict.version:
            continue
        before = badges.get(badge.badge_id)
        rule = RuleState(
            version=badge.version,
            kind=badge.rule.kind,
            count=verdict.value,
            awarded=dict(before.awarded) if before is not None else {},
        )
        for instance in verdict.earned:
            if instance in rule.awarded:
                continue
            rule.awarded[instance] = now
            awards.append(award(badge, instance, now))
        if (
            before is None
            or before.count != rule.count
            or before.version != rule.version
            or rule.awarded != before.awarded
        ):
            progress.append(
                ProgressUpdate(
                    badge_id=badge.badge_id,
                    name=badge.name,
                    value=verdict.value,
                    target=verdict.target,
                    kind=badge.rule.kind,
                    version=badge.version,
                )
            )
        badges[badge.badge_id] = rule
    changed = bool(progress or awards)
    new_state = state.model_copy(
        update={"badges": badges, "financial_seq": seq, "batch_seq": state.batch_seq + (1 if changed else 0)}
    )
    return Evaluation(state=new_state, progress=progress, awards=awards, duplicates=[])
