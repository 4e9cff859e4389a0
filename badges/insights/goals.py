"""Where each of a member's goals stands, from their figures (see `badges/domain/goals.py` for
what counts). Pure apart from being part of the numeric work of an evaluation.

- **save**: saved since the goal was set (net money moved to savings, by the figures' rules and
  without money moved in and straight back out) against the target; the expected completion date
  at the recent saving pace (`predictions.goal_forecast`); at risk when a deadline will be missed
  at that pace, or has passed unreached. Reached once what was saved without the last week's
  deposits reaches the target: a deposit may yet be a round trip's first leg
  (`round_trips.settled_on`), and a reached goal earns a badge that is not taken back.
- **limit**: this month's spending in the category against the limit, what the month is predicted
  to reach (`predictions.predict_month`), whether the last complete month kept within it; at risk
  when the month has gone over, or is predicted to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from badges.domain.categories import SpendingCategory
from badges.domain.figures import Entry, MonthFigures, month_of, monthly_figures
from badges.domain.goals import Goal, category_spending, months_within_limit
from badges.insights.predictions import MonthPrediction, goal_forecast
from badges.insights.round_trips import unsettled_deposit


@dataclass(frozen=True)
class SaveProgress:
    saved_minor: int
    target_minor: int
    percent: int  # of the target, 0-100
    pace_per_month_minor: int  # the recent saving pace
    expected_completion: date | None  # None while the pace is nothing (or reached: the day it was)
    on_track: bool | None  # against the deadline, when there is one
    needed_per_month_minor: int | None  # to make the deadline from now
    deadline_passed: bool
    at_risk: bool
    reason: str


@dataclass(frozen=True)
class LimitProgress:
    month: date  # this month
    spent_minor: int  # in the category so far this month
    limit_minor: int
    remaining_minor: int  # negative when over
    percent: int  # of the limit spent so far (may pass 100)
    predicted_minor: int | None  # the category's predicted spending by the month's end
    last_complete_month: date | None
    last_complete_month_spent_minor: int | None
    last_complete_month_kept: bool | None
    months_kept: int  # whole months since the goal was set that stayed within it
    at_risk: bool
    reason: str


@dataclass(frozen=True)
class GoalProgress:
    goal: Goal
    as_of: date
    reached: bool
    save: SaveProgress | None = None
    limit: LimitProgress | None = None

    @property
    def newly_reached(self) -> bool:
        return self.reached and self.goal.reached_on is None


def goals_progress(
    goals: Sequence[Goal],
    entries: Sequence[Entry],
    figures: Sequence[MonthFigures],
    prediction: MonthPrediction | None,
    today: date,
) -> list[GoalProgress]:
    """Each goal's progress as of `today`. `entries` are the counted entries (round trips out),
    `figures` the monthly figures made from them."""
    # Savings entries only: the goals' "saved since" sums read a handful of rows, not the history.
    saving = [entry for entry in entries if entry.category is SpendingCategory.SAVINGS]
    kept = [entry for entry in saving if not unsettled_deposit(entry, today)]
    progress = []
    for goal in goals:
        if goal.kind == "save":
            saved, kept_saved = saved_since(saving, goal.created_on), saved_since(kept, goal.created_on)
            progress.append(save_progress(goal, saved, figures, today, kept_saved))
        else:
            progress.append(limit_progress(goal, figures, prediction, today))
    return progress


def saved_since(entries: Sequence[Entry], first_day: date) -> int:
    """Net saved from `first_day` on, by the figures' rules."""
    return sum(month.savings_minor for month in monthly_figures(e for e in entries if e.day >= first_day))


def save_progress(
    goal: Goal, saved_minor: int, figures: Sequence[MonthFigures], today: date, kept_minor: int | None = None
) -> GoalProgress:
    """`kept_minor`: of `saved_minor`, what has stayed in savings a week (None: all of it)."""
    assert goal.target_minor is not None
    target = goal.target_minor
    forecast = goal_forecast(target, saved_minor, figures, today, goal.deadline)
    settling = forecast.reached and kept_minor is not None and kept_minor < target
    reached = goal.reached_on is not None or (forecast.reached and not settling)
    deadline_passed = goal.deadline is not None and goal.deadline < today
    at_risk = not reached and (deadline_passed or forecast.on_track is False)
    reason = forecast.reason
    if settling and goal.reached_on is None:
        reason = "The target is saved; it counts as reached once the last week's saving has stayed a week."
    elif goal.reached_on is not None and not forecast.reached:
        reason = f"Reached on {goal.reached_on:%-d %B %Y}; saved since then has fallen back below the target."
    elif deadline_passed and not reached:
        reason = f"The deadline ({goal.deadline:%-d %B %Y}) has passed; {(target - saved_minor) / 100:,.2f} to go."
    return GoalProgress(
        goal=goal,
        as_of=today,
        reached=reached,
        save=SaveProgress(
            saved_minor=saved_minor,
            target_minor=target,
            percent=max(0, min(100, saved_minor * 100 // target)),
            pace_per_month_minor=forecast.pace_per_month_minor,
            expected_completion=goal.reached_on or forecast.expected_completion,
            on_track=forecast.on_track,
            needed_per_month_minor=forecast.needed_per_month_minor,
            deadline_passed=deadline_passed,
            at_risk=at_risk,
            reason=reason,
        ),
    )


def limit_progress(
    goal: Goal, figures: Sequence[MonthFigures], prediction: MonthPrediction | None, today: date
) -> GoalProgress:
    assert goal.category is not None and goal.limit_minor is not None
    category, limit = goal.category, goal.limit_minor
    month = month_of(today)
    this_month = next((f for f in figures if f.month == month), None)
    spent = category_spending(this_month, category) if this_month is not None else 0
    predicted = None
    if prediction is not None and prediction.month == month:
        predicted = max(spent, prediction.predicted_by_category.get(category.value, 0))
    last = next((f for f in reversed(figures) if f.month < month and f.complete), None)
    last_spent = category_spending(last, category) if last is not None else None
    kept = months_within_limit(goal, figures, today)
    over = spent > limit
    heading_over = predicted is not None and predicted > limit
    if over:
        reason = f"{spent / 100:,.2f} spent on {category.value} this month: over the limit of {limit / 100:,.2f}."
    elif predicted is not None and heading_over:
        reason = (
            f"{spent / 100:,.2f} of {limit / 100:,.2f} spent on {category.value} so far; at this pace about "
            f"{predicted / 100:,.2f} by the month's end."
        )
    else:
        reason = f"{spent / 100:,.2f} of {limit / 100:,.2f} spent on {category.value} so far this month."
    return GoalProgress(
        goal=goal,
        as_of=today,
        reached=goal.reached_on is not None or bool(kept),
        limit=LimitProgress(
            month=month,
            spent_minor=spent,
            limit_minor=limit,
            remaining_minor=limit - spent,
            percent=max(0, spent * 100 // limit),
            predicted_minor=predicted,
            last_complete_month=last.month if last is not None else None,
            last_complete_month_spent_minor=last_spent,
            last_complete_month_kept=last_spent <= limit if last_spent is not None else None,
            months_kept=len(kept),
            at_risk=over or heading_over,
            reason=reason,
        ),
    )
