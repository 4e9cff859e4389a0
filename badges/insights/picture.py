"""A member's financial picture, all at once: monthly figures, trends, income, recurring payments,
the health score, this month's prediction, data quality, what looks unusual, and the snapshot the
bank-data badges are decided on. What a behaviour evaluation computes and keeps (sealed) for the
dashboard; pure apart from the numeric libraries.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from badges.domain.categories import CONFIDENT, SpendingCategory
from badges.domain.figures import Entry, MonthFigures, month_of, monthly_figures, trends
from badges.domain.financial import FinancialSnapshot
from badges.domain.goals import Goal
from badges.domain.health import HealthScore, health_score, observations
from badges.domain.quality import AccountState, DataQuality, Record, assess_quality
from badges.insights.anomalies import Unusual, unusual_transactions
from badges.insights.goals import GoalProgress, goals_progress
from badges.insights.income import Income, Recurring, detect_income, detect_recurring
from badges.insights.predictions import MonthPrediction, predict_month
from badges.insights.round_trips import (
    RoundTrip,
    savings_round_trips,
    unsettled_deposit,
    unsettled_savings,
    without_round_trips,
)

WATCHED = ("gambling", "fast_food")  # the categories avoidance and improvement badges read by day
TREND_FIGURES = ("income_minor", "spending_minor", "savings_minor", "spending:fast_food", "spending:gambling")


@dataclass(frozen=True)
class Picture:
    figures: list[MonthFigures]
    snapshot: FinancialSnapshot
    health: HealthScore
    income: Income
    recurring: list[Recurring]
    prediction: MonthPrediction | None
    quality: DataQuality
    unusual: list[Unusual]
    # Savings moved in and straight back out: not counted as saving unless a reviewer cleared them.
    round_trips: list[RoundTrip] = dataclasses.field(default_factory=list)
    goals: list[GoalProgress] = dataclasses.field(default_factory=list)
    unsettled_savings_minor: int = 0  # saved in the last week: counted by savings badges once kept a week

    @property
    def for_review(self) -> list[RoundTrip]:
        """The round trips a person should look at (each reported once, by its key)."""
        return [trip for trip in self.round_trips if trip.for_review]

    def document(self) -> dict[str, Any]:
        """What the dashboard shows, as JSON (amounts in minor units, dates ISO). Each part is made
        JSON once (the months are most of it)."""
        return {
            "months": [{**_jsonable(month), "complete": month.complete} for month in self.figures[-24:]],
            "trends": {name: _jsonable(trends(self.figures, name)[-13:]) for name in TREND_FIGURES},
            "health": _jsonable(self.health),
            "income": _jsonable(
                {
                    "frequency": self.income.frequency,
                    "regular": self.income.regular,
                    "typicalMinor": self.income.typical_minor,
                    "nextExpected": self.income.next_expected,
                    "monthlyMedianMinor": self.income.monthly_median_minor,
                    "reason": self.income.reason,
                }
            ),
            "recurring": [
                _jsonable(
                    {
                        "category": r.category,
                        "kind": r.kind,
                        "frequency": r.frequency,
                        "typicalMinor": r.typical_minor,
                        "nextExpected": r.next_expected,
                        "active": r.active,
                    }
                )
                for r in self.recurring
            ],
            "prediction": _jsonable(self.prediction),
            "quality": _jsonable(self.quality),
            "unusual": _jsonable(self.unusual),
            "savingsRoundTrips": len(self.round_trips),
            # What the member has saved; savings badges count all but the last week's deposits.
            "totalSavedMinor": self.snapshot.total_saved_minor + self.unsettled_savings_minor,
            "unsettledSavingsMinor": self.unsettled_savings_minor,
            "liquidSavingsMinor": (
                None
                if self.snapshot.liquid_savings_minor is None
                else self.snapshot.liquid_savings_minor + self.unsettled_savings_minor
            ),
            "goals": [goal_document(progress) for progress in self.goals],
        }


def member_picture(
    entries: Sequence[Entry],
    records: Sequence[Record],
    accounts: Sequence[AccountState],
    last_synced_at: datetime | None,
    today: date,
    now: datetime,
    goals: Sequence[Goal] = (),
    overruled: Mapping[str, Sequence[date]] | None = None,
    cleared: Collection[str] = (),
    provider_delayed: bool = False,
) -> Picture:
    """Everything about the member's money as of `today` (their local date; `now` is the wall
    clock, which a sync's time is measured against). `entries` are the
    posted, categorised transactions; `records` every transaction as stored (for data quality);
    `overruled`: days of harmful spending (by category) the provider is sure of and the member
    re-labelled, which avoidance badges still read;
    `goals` the member's own goals, each given its progress; `cleared`: keys of the savings round
    trips a reviewer found not suspicious; `provider_delayed`: a connection waits on its provider's
    breaker (decisions wait too)."""
    entries = sorted(entries, key=lambda entry: entry.day)
    # Covered: the days that are over. Today is not (more may be spent before midnight), so a
    # month, a quarter or a clean stretch ending today is complete only tomorrow.
    coverage = (entries[0].day, today - timedelta(days=1)) if entries else None
    trips = savings_round_trips(entries)
    # Money moved into savings and straight back out is not saving (nor income), unless a person
    # who looked at it says otherwise.
    counted = without_round_trips(entries, trips, cleared)
    figures = monthly_figures(counted, coverage)
    # Savings badges count a deposit once it has stayed a week (it may yet be a round trip's first
    # leg): they read the figures without the last week's deposits.
    unsettled_by_month = unsettled_savings(counted, today)
    unsettled = sum(unsettled_by_month.values())
    settled = _settled(figures, counted, set(unsettled_by_month), coverage, today)
    recurring = detect_recurring(entries, as_of=today)
    income = detect_income(entries, as_of=today, coverage=coverage)
    liquid = sum(a.balance_minor or 0 for a in accounts if a.kind == "savings") if accounts else None
    has_savings_account = any(a.kind == "savings" for a in accounts)
    health = health_score(
        figures,
        today,
        observations(counted, figures, liquid_savings_minor=liquid if has_savings_account else None),
    )
    quality = assess_quality(records, accounts, last_synced_at, now, today=today, provider_delayed=provider_delayed)
    unsure = frozenset(
        entry.category.value for entry, record in _paired(entries, records) if record.confidence < CONFIDENT
    )
    # The month figures are those of the entries as they are when no round trip was taken out.
    as_they_are = figures if not trips and entries and entries[-1].day <= today else None
    prediction = predict_month(entries, today, recurring, income, as_they_are) if entries else None
    progress = goals_progress(goals, counted, figures, prediction, today)
    snapshot = FinancialSnapshot(
        today=today,
        figures=settled,
        coverage=coverage,
        category_days=_days_in(entries, overruled or {}),
        total_saved_minor=sum(month.savings_minor for month in settled),
        liquid_savings_minor=liquid - unsettled if liquid is not None and has_savings_account else None,
        unsettled_savings=unsettled_by_month,
        quality_problem=None if quality.decisions_may_proceed else _problem(quality),
        unsure_categories=unsure,
        goals_reached=[goal.goal.goal_id for goal in progress if goal.reached],
    )
    since = today - timedelta(days=31)
    return Picture(
        figures=figures,
        snapshot=snapshot,
        health=health,
        income=income,
        recurring=recurring,
        prediction=prediction,
        quality=quality,
        unusual=[_without_merchant(found) for found in unusual_transactions(entries, since)],
        round_trips=trips,
        goals=progress,
        unsettled_savings_minor=unsettled,
    )


def _settled(
    figures: list[MonthFigures],
    counted: Sequence[Entry],
    unsettled_months: set[date],
    coverage: tuple[date, date] | None,
    today: date,
) -> list[MonthFigures]:
    """The month figures without the last week's deposits into savings: the months that hold one
    (a week's, so the last one or two) counted again, the others as they are."""
    if not unsettled_months or coverage is None:
        return figures
    first = min(unsettled_months)
    again = monthly_figures(
        [e for e in counted if month_of(e.day) in unsettled_months and not unsettled_deposit(e, today)],
        (max(coverage[0], first), coverage[1]),  # the same days covered, in those months
    )
    kept = [month for month in figures if month.month not in unsettled_months]
    return sorted(kept + [month for month in again if month.month in unsettled_months], key=lambda m: m.month)


def _days_in(entries: Sequence[Entry], overruled: Mapping[str, Sequence[date]]) -> dict[str, list[date]]:
    """The days of each `WATCHED` category's spending, with the days of what the member re-labelled
    that the provider is sure of (one pass over the entries)."""
    watched = {SpendingCategory(name): name for name in WATCHED}
    days: dict[str, list[date]] = {name: list(overruled.get(name, ())) for name in WATCHED}
    for entry in entries:
        if (name := watched.get(entry.category)) is not None:
            days[name].append(entry.day)
    return {name: sorted(found) for name, found in days.items()}


def _without_merchant(found: Unusual) -> Unusual:
    """Merchants are known here only by their keyed digest (never opened for an evaluation): the
    words say the category and the amounts instead."""
    if not found.merchant:
        return found
    return dataclasses.replace(found, merchant="", reason=found.reason.replace(f" at {found.merchant}", ""))


def goal_document(progress: GoalProgress) -> dict[str, Any]:
    """One goal's progress as the dashboard and `GET /v1/me/goals` read it (by the goal's id)."""
    measured = progress.save if progress.save is not None else progress.limit
    return {
        "goalId": progress.goal.goal_id,
        "kind": progress.goal.kind,
        "asOf": progress.as_of.isoformat(),
        "reached": progress.reached,
        **_jsonable(measured),
    }


def _paired(entries: Sequence[Entry], records: Sequence[Record]) -> list[tuple[Entry, Record]]:
    by_id = {record.transaction_id: record for record in records}
    return [(entry, by_id[entry.transaction_id]) for entry in entries if entry.transaction_id in by_id]


def _problem(quality: DataQuality) -> str:
    blocking = [issue.reason for issue in quality.issues if issue.severity == "blocking"]
    return "; ".join(blocking) or f"data quality is {quality.level}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, SpendingCategory):
        return value.value
    if value is None or isinstance(value, int | float | str):  # most of a document: answered first
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {camel: _jsonable(getattr(value, name)) for name, camel in _wire_names(type(value))}
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


@functools.cache
def _wire_names(kind: type) -> tuple[tuple[str, str], ...]:
    """A dataclass's fields, each with its camelCase name."""
    return tuple((field.name, _camel(field.name)) for field in dataclasses.fields(kind))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
