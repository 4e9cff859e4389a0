"""Goals a member sets themselves (`POST /v1/me/goals`), and how a limit goal's month is judged.
Pure: the member's local date and figures are passed in.

Two kinds:
- **save**: put aside `target_minor` (by `deadline`, if given). Counted from the day the goal was
  set, in the member's time zone: savings made before it do not count towards it.
- **limit**: keep spending in one category at most `limit_minor` in a calendar month. Reached once
  a whole month since the goal was set has stayed within it: the first month that counts is the
  month it was set in only when it was set on the 1st (otherwise part of that month was spent
  before the goal existed), and a month counts once it is over and the history covers all of it.

A goal, once reached, stays reached (its badge instance is the goal's id, awarded once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from badges.domain.categories import NOT_SPENDING, SpendingCategory
from badges.domain.figures import MonthFigures, month_of

GoalKind = Literal["save", "limit"]
MAX_GOALS = 20  # goals one member may hold at once
MAX_NAME_LENGTH = 100
# The categories a limit goal may name: the ones that are spending.
LIMITABLE = tuple(category for category in SpendingCategory if category not in NOT_SPENDING)


@dataclass(frozen=True)
class Goal:
    goal_id: str
    kind: GoalKind
    name: str
    created_on: date  # the member's local date when they set it
    reached_on: date | None = None  # set by the evaluation that first found it reached
    target_minor: int | None = None  # save
    deadline: date | None = None  # save, optional
    category: SpendingCategory | None = None  # limit
    limit_minor: int | None = None  # limit


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def first_limit_month(created_on: date) -> date:
    """The first month a limit goal is judged on: the whole months since it was set."""
    start = month_of(created_on)
    return start if created_on.day == 1 else next_month(start)


def category_spending(month: MonthFigures, category: SpendingCategory) -> int:
    return month.spending_by_category.get(category.value, 0)


def months_within_limit(goal: Goal, figures: Sequence[MonthFigures], today: date) -> list[date]:
    """The whole months since `goal` was set, over by `today` and fully covered by the history,
    whose spending in its category stayed at most its limit."""
    assert goal.category is not None and goal.limit_minor is not None
    first = first_limit_month(goal.created_on)
    current = month_of(today)
    return [
        month.month
        for month in figures
        if first <= month.month < current
        and month.complete
        and category_spending(month, goal.category) <= goal.limit_minor
    ]
