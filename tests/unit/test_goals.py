"""Goals' progress from the member's figures: a save goal counts what is saved from the day it was
set, with its expected completion date and whether its deadline is at risk; a limit goal reads
this month's spending in its category and is reached by a whole month since it was set that
stayed within the limit; reached goals are the goal badge's award instances."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

from badges.domain.categories import SpendingCategory
from badges.domain.definitions import BadgeDefinition, BadgeSpec
from badges.domain.figures import Entry, monthly_figures
from badges.domain.financial import decide
from badges.domain.goals import LIMITABLE, Goal, first_limit_month, months_within_limit
from badges.insights.goals import limit_progress, save_progress, saved_since
from badges.insights.picture import member_picture
from badges.insights.predictions import predict_month

C = SpendingCategory
TODAY = date(2026, 4, 15)


def history(saved: int = 40_000, groceries: tuple[int, ...] = (50_000, 20_000, 25_000, 35_000)) -> list[Entry]:
    """January to mid-April: pay on the 1st, `saved` moved to savings on the 2nd (both sides of the
    move), a month's groceries on the 10th."""
    entries = []
    for index, spent in enumerate(groceries):
        month = index + 1
        entries.append(Entry(date(2026, month, 1), 300_000, C.INCOME_SALARY))
        entries.append(Entry(date(2026, month, 2), -saved, C.SAVINGS))
        entries.append(Entry(date(2026, month, 2), saved, C.SAVINGS, account_kind="savings"))
        entries.append(Entry(date(2026, month, 10), -spent, C.GROCERIES))
    return entries


def save(created_on: date, target: int, deadline: date | None = None, reached_on: date | None = None) -> Goal:
    return Goal("s", "save", "holiday", created_on, reached_on, target_minor=target, deadline=deadline)


def limit(created_on: date, most: int, reached_on: date | None = None) -> Goal:
    return Goal("l", "limit", "food", created_on, reached_on, category=C.GROCERIES, limit_minor=most)


def figures(entries: list[Entry], first: date = date(2026, 1, 1)) -> list[Any]:
    return monthly_figures(entries, (first, TODAY))


def test_a_save_goal_counts_what_is_saved_from_the_day_it_was_set() -> None:
    entries = history()
    # Set on 10 February, after that month's saving: March's and April's count, once each (the
    # savings account's side of each move is not counted again).
    assert saved_since(entries, date(2026, 2, 10)) == 80_000
    assert saved_since(entries, date(2026, 2, 2)) == 120_000  # the day itself counts
    # Money brought back from savings counts against it.
    taken = [*entries, Entry(date(2026, 4, 12), 30_000, C.SAVINGS)]
    assert saved_since(taken, date(2026, 2, 10)) == 50_000

    progress = save_progress(save(date(2026, 2, 10), 100_000), 80_000, figures(entries), TODAY)
    assert progress.save is not None and not progress.reached
    assert (progress.save.saved_minor, progress.save.percent, progress.save.pace_per_month_minor) == (
        80_000,
        80,
        40_000,
    )
    # 20,000 left at 40,000 a month (January to March): half a month on.
    assert progress.save.expected_completion == date(2026, 5, 1)
    assert progress.save.on_track is None and not progress.save.at_risk  # no deadline

    reached = save_progress(save(date(2026, 2, 10), 80_000), 80_000, figures(entries), TODAY)
    assert reached.reached and reached.newly_reached and reached.save is not None and reached.save.percent == 100


def test_a_deadline_the_pace_will_miss_puts_a_save_goal_at_risk() -> None:
    months = figures(history())
    soon = save_progress(save(date(2026, 2, 10), 100_000, deadline=date(2026, 4, 25)), 80_000, months, TODAY)
    assert soon.save is not None and soon.save.on_track is False and soon.save.at_risk
    assert soon.save.needed_per_month_minor is not None and soon.save.needed_per_month_minor > 40_000
    later = save_progress(save(date(2026, 2, 10), 100_000, deadline=date(2026, 6, 30)), 80_000, months, TODAY)
    assert later.save is not None and later.save.on_track is True and not later.save.at_risk
    # A deadline gone by unreached is at risk, and says so.
    missed = save_progress(save(date(2026, 1, 5), 500_000, deadline=date(2026, 4, 1)), 80_000, months, TODAY)
    assert missed.save is not None and missed.save.deadline_passed and missed.save.at_risk
    assert "has passed" in missed.save.reason
    # Nothing put aside lately: no date, and a deadline is at risk.
    idle = figures(history(saved=0))
    stalled = save_progress(save(date(2026, 2, 10), 100_000, deadline=date(2026, 12, 31)), 0, idle, TODAY)
    assert stalled.save is not None and stalled.save.expected_completion is None and stalled.save.at_risk


def test_a_reached_goal_stays_reached() -> None:
    goal = save(date(2026, 2, 10), 80_000, reached_on=date(2026, 3, 2))
    progress = save_progress(goal, 50_000, figures(history()), TODAY)
    assert progress.reached and not progress.newly_reached
    assert progress.save is not None and progress.save.expected_completion == date(2026, 3, 2)


def test_a_limit_goal_is_judged_on_whole_months_since_it_was_set() -> None:
    assert first_limit_month(date(2026, 2, 1)) == date(2026, 2, 1)  # set on the 1st: that month counts
    assert first_limit_month(date(2026, 2, 10)) == date(2026, 3, 1)
    assert first_limit_month(date(2026, 12, 31)) == date(2027, 1, 1)
    # Groceries: January 50,000, February 20,000, March 25,000, April so far 35,000.
    months = figures(history())
    # Set on 10 February: February was partly before it; March kept 30,000; April is not over.
    assert months_within_limit(limit(date(2026, 2, 10), 30_000), months, TODAY) == [date(2026, 3, 1)]
    assert months_within_limit(limit(date(2026, 2, 1), 30_000), months, TODAY) == [date(2026, 2, 1), date(2026, 3, 1)]
    assert months_within_limit(limit(date(2026, 2, 10), 24_999), months, TODAY) == []
    assert months_within_limit(limit(date(2026, 3, 1), 40_000), months, TODAY) == [date(2026, 3, 1)]  # at most
    # A month the history does not cover whole is not judged.
    assert months_within_limit(limit(date(2026, 3, 1), 30_000), figures(history(), date(2026, 3, 5)), TODAY) == []

    progress = limit_progress(limit(date(2026, 2, 10), 30_000), months, None, TODAY)
    assert progress.reached and progress.limit is not None
    assert (progress.limit.month, progress.limit.spent_minor, progress.limit.remaining_minor) == (
        date(2026, 4, 1),
        35_000,
        -5_000,
    )
    assert progress.limit.at_risk and "over the limit" in progress.limit.reason  # April is over already
    assert (progress.limit.last_complete_month, progress.limit.last_complete_month_spent_minor) == (
        date(2026, 3, 1),
        25_000,
    )
    assert progress.limit.last_complete_month_kept is True and progress.limit.months_kept == 1
    # Set today: nothing judged yet, and this month is within the limit so far.
    fresh = limit_progress(limit(TODAY, 40_000), months, None, TODAY)
    assert not fresh.reached and fresh.limit is not None and not fresh.limit.at_risk
    assert fresh.limit.percent == 87 and fresh.limit.months_kept == 0


def test_a_month_predicted_over_the_limit_is_at_risk() -> None:
    entries = history()
    prediction = predict_month(entries, TODAY, [], None)
    heading = dataclasses.replace(prediction, predicted_by_category={"groceries": 45_000})
    progress = limit_progress(limit(TODAY, 40_000), figures(entries), heading, TODAY)
    assert progress.limit is not None and progress.limit.predicted_minor == 45_000
    assert progress.limit.at_risk and "by the month's end" in progress.limit.reason
    calm = dataclasses.replace(prediction, predicted_by_category={"groceries": 38_000})
    steady = limit_progress(limit(TODAY, 40_000), figures(entries), calm, TODAY)
    assert steady.limit is not None and not steady.limit.at_risk
    # A prediction never says less than what is spent already.
    low = dataclasses.replace(prediction, predicted_by_category={})
    assert limit_progress(limit(TODAY, 40_000), figures(entries), low, TODAY).limit.predicted_minor == 35_000  # type: ignore[union-attr]


def test_only_spending_categories_take_a_limit() -> None:
    assert C.GROCERIES in LIMITABLE and C.GAMBLING in LIMITABLE
    assert not {C.SAVINGS, C.TRANSFER, C.INCOME_SALARY, C.DEBT_REPAYMENT} & set(LIMITABLE)


def test_reached_goals_are_in_the_picture_and_each_earns_the_goal_badge_once() -> None:
    entries = history()
    # Money moved into savings and straight back out after the goal was set saves nothing.
    trip = [Entry(date(2026, 4, 12), -90_000, C.SAVINGS), Entry(date(2026, 4, 13), 90_000, C.SAVINGS)]
    goals = [
        Goal("a", "save", "small", date(2026, 2, 10), None, target_minor=80_000),
        Goal("b", "save", "big", date(2026, 2, 10), None, target_minor=150_000),
        Goal("c", "limit", "food", date(2026, 2, 10), None, category=C.GROCERIES, limit_minor=30_000),
        Goal("d", "save", "old", date(2026, 1, 1), date(2026, 1, 2), target_minor=10_000),
    ]
    picture = member_picture([*entries, *trip], [], [], None, TODAY, datetime(2026, 4, 15, 12, tzinfo=UTC), goals)
    by_id = {progress.goal.goal_id: progress for progress in picture.goals}
    assert by_id["b"].save is not None and by_id["b"].save.saved_minor == 80_000  # the round trip is not saving
    assert list(picture.snapshot.goals_reached) == ["a", "c", "d"]
    assert [p.goal.goal_id for p in picture.goals if p.newly_reached] == ["a", "c"]
    document = {item["goalId"]: item for item in picture.document()["goals"]}
    assert document["b"]["kind"] == "save" and document["b"]["savedMinor"] == 80_000
    assert (
        document["b"]["expectedCompletion"] == "2026-06-08"
    )  # 70,000 at 40,000 a month and document["b"]["atRisk"] is False
    assert document["c"]["spentMinor"] == 35_000 and document["c"]["lastCompleteMonthKept"] is True
    assert document["c"]["reached"] is True and document["c"]["asOf"] == "2026-04-15"

    spec = BadgeSpec.model_validate(
        {"name": "Goal getter", "rule": {"kind": "goal"}, "config": {"openBanking": {"providers": ["plaid"]}}}
    )
    [verdict] = decide([BadgeDefinition.from_spec("goal-getter", 1, spec)], picture.snapshot)
    assert verdict.earned == ["a", "c", "d"]


def test_a_goal_beyond_any_date_has_no_expected_date() -> None:
    # A trillion (the largest target the API takes) at a pace of one a month: no date, no overflow.
    trickle = figures(history(saved=1))
    far = save_progress(save(TODAY, 10**12, deadline=date(2030, 1, 1)), 0, trickle, TODAY)
    assert far.save is not None and far.save.expected_completion is None and far.save.at_risk
    assert "more than 100 years" in far.save.reason
