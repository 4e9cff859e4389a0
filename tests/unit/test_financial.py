"""Bank-data badges decided on a member's figures: each rule kind, and when decisions wait."""

from __future__ import annotations

from datetime import date
from typing import Any

from badges.domain.categories import SpendingCategory
from badges.domain.definitions import BadgeDefinition, BadgeSpec
from badges.domain.figures import Entry, monthly_figures
from badges.domain.financial import FinancialSnapshot, Verdict, decide

C = SpendingCategory
BANK = {"openBanking": {"providers": ["plaid"], "minimumHistoryMonths": 3}}


def badge(badge_id: str, rule: dict[str, Any], **config: Any) -> BadgeDefinition:
    spec = BadgeSpec.model_validate({"name": badge_id, "rule": rule, "config": {**BANK, **config}})
    return BadgeDefinition.from_spec(badge_id, 1, spec)


def months(*plan: tuple[int, int, int, int], year: int = 2026) -> list[Entry]:
    """Per month (from January): salary, saved, fast food, gambling (minor units)."""
    entries = []
    for index, (salary, saved, fast_food, gambling) in enumerate(plan):
        month = index + 1
        entries.append(Entry(date(year, month, 1), salary, C.INCOME_SALARY))
        if saved:
            entries.append(Entry(date(year, month, 2), -saved, C.SAVINGS))
        if fast_food:
            entries.append(Entry(date(year, month, 10), -fast_food, C.FAST_FOOD))
        if gambling:
            entries.append(Entry(date(year, month, 12), -gambling, C.GAMBLING))
    return entries


def snapshot(entries: list[Entry], last: date, **more: Any) -> FinancialSnapshot:
    coverage = (date(2026, 1, 1), last)
    figures = monthly_figures(entries, coverage)
    days = {
        category: [e.day for e in entries if e.category.value == category] for category in ("gambling", "fast_food")
    }
    saved = sum(month.savings_minor for month in figures)
    return FinancialSnapshot(last, figures, coverage, days, saved, **more)


def one(definition: BadgeDefinition, snap: FinancialSnapshot) -> Verdict:
    [verdict] = decide([definition], snap)
    return verdict


def test_a_tenth_of_income_saved_three_months_running() -> None:
    rule = {"kind": "sustained", "metric": "savings_rate", "minimum": 0.1, "months": 3}
    steady = months((300_000, 40_000, 0, 0), (300_000, 30_000, 0, 0), (300_000, 30_000, 0, 0))
    verdict = one(badge("tenth", rule), snapshot(steady, date(2026, 3, 31)))
    assert (verdict.value, verdict.target, verdict.earned, verdict.waiting) == (3, 3, ["1"], None)
    # One month below a tenth breaks the run.
    broken = months((300_000, 40_000, 0, 0), (300_000, 20_000, 0, 0), (300_000, 30_000, 0, 0))
    assert one(badge("tenth", rule), snapshot(broken, date(2026, 3, 31))).earned == []


def test_ninety_days_without_gambling() -> None:
    rule = {"kind": "avoidance", "category": "gambling", "windowDays": 90}
    plan = [(300_000, 0, 0, 0)] * 4
    clean = one(badge("no-bets", rule), snapshot(months(*plan), date(2026, 4, 30)))
    # Named by the day the 90 clean days were complete (1 January + 89 days), whatever the day
    # it is decided on: the same stretch is one award.
    assert clean.value == 90 and clean.earned == ["2026-03-31"]
    later = one(badge("no-bets", rule), snapshot(months(*plan), date(2026, 5, 31)))
    assert later.earned == ["2026-03-31"]
    bet = one(badge("no-bets", rule), snapshot(months(*plan[:3], (300_000, 0, 0, 2_000)), date(2026, 4, 30)))
    # A bet on 12 April: 18 clean days since; the stretch before it (1 January to 11 April) was a
    # clean window of its own.
    assert bet.value == 18 and bet.earned == ["2026-03-31"]
    short = one(badge("no-bets", rule), snapshot(months(*plan[:2], (300_000, 0, 0, 2_000)), date(2026, 4, 30)))
    assert short.value == 49 and short.earned == []  # bet on 12 March: no 90 days either side


def test_every_complete_window_of_the_history_is_decided() -> None:
    """A backfill (or late data in an old window) earns what live tracking would have earned when
    each window closed, not only what the latest window shows."""
    tenth = badge("tenth", {"kind": "sustained", "metric": "savings_rate", "minimum": 0.1, "months": 3})
    trimmer = badge(
        "trimmer",
        {"kind": "improvement", "category": "spending"},
        behaviorTracking={"trackingPeriod": "monthly", "improvementThreshold": 0.1, "categories": ["spending"]},
    )
    # Saved a tenth January to March, then stopped; spending fell by a fifth in February only.
    plan = [(300_000, 40_000, 0, 0), (300_000, 40_000, 0, 0), (300_000, 40_000, 0, 0)] + [(300_000, 0, 0, 0)] * 2
    entries = months(*plan) + [
        Entry(date(2026, month, 3), -amount, C.GROCERIES)
        for month, amount in ((1, 50_000), (2, 40_000), (3, 40_000), (4, 42_000), (5, 40_000))
    ]
    by_id = {v.badge_id: v for v in decide([tenth, trimmer], snapshot(entries, date(2026, 5, 31)))}
    assert (by_id["tenth"].value, by_id["tenth"].earned) == (0, ["1"])  # the run is broken now
    assert (by_id["trimmer"].value, by_id["trimmer"].earned) == (5, ["2026-02-01"])  # May: 4.8 % less


def test_fast_food_down_a_fifth_quarter_on_quarter_by_either_name() -> None:
    quarters = [(300_000, 0, 10_000, 0)] * 3 + [(300_000, 0, 7_000, 0)] * 3
    for name in ("fast_food", "junk_food"):
        definition = badge(
            "trimmer",
            {"kind": "improvement", "category": name},
            behaviorTracking={"trackingPeriod": "quarterly", "improvementThreshold": 0.2, "categories": [name]},
        )
        verdict = one(definition, snapshot(months(*quarters), date(2026, 6, 30)))
        assert (verdict.value, verdict.target, verdict.earned) == (20, 20, ["2026-04-01"])
        # Before the second quarter is complete, it is not seen.
        early = one(definition, snapshot(months(*quarters[:5]), date(2026, 5, 31)))
        assert early.earned == []


def test_first_thousand_and_a_rainy_day_fund() -> None:
    plan = [(300_000, 40_000, 0, 0)] * 3
    first = badge("first", {"kind": "milestone", "targetMinor": 100_000})
    fund = badge("fund", {"kind": "buffer", "months": 1})
    snap = snapshot(months(*plan), date(2026, 3, 31), liquid_savings_minor=120_000)
    by_id = {v.badge_id: v for v in decide([first, fund], snap)}
    assert (by_id["first"].value, by_id["first"].earned) == (100_000, ["1"])
    # Spending is nil in this plan but rent makes it real: one month of spending is the target.
    assert by_id["fund"].earned == ["1"]
    rent = months(*plan) + [Entry(date(2026, m, 3), -150_000, C.RENT_MORTGAGE) for m in (1, 2, 3)]
    short = one(fund, snapshot(rent, date(2026, 3, 31), liquid_savings_minor=120_000))
    assert (short.value, short.target, short.earned) == (120_000, 150_000, [])


def test_goals_reached_are_awards_of_their_own() -> None:
    snap = snapshot(months((300_000, 0, 0, 0)), date(2026, 1, 31), goals_reached=["g-1", "g-2"])
    verdict = one(badge("goal", {"kind": "goal"}), snap)
    assert verdict.earned == ["g-1", "g-2"] and verdict.waiting is None  # no history needed


def test_decisions_wait_for_history_quality_and_certain_categories() -> None:
    rule = {"kind": "avoidance", "category": "gambling", "windowDays": 30}
    two_months = snapshot(months((300_000, 0, 0, 0), (300_000, 0, 0, 0)), date(2026, 2, 28))
    short = one(badge("no-bets", rule), two_months)
    assert short.earned == [] and short.waiting == "needs 3 complete months of bank history; 2 so far"
    plan = [(300_000, 0, 0, 0)] * 3
    stale = one(
        badge("no-bets", rule), snapshot(months(*plan), date(2026, 3, 31), quality_problem="no sync for 9 days")
    )
    assert stale.earned == [] and "no sync for 9 days" in (stale.waiting or "")
    unsure = snapshot(months(*plan), date(2026, 3, 31), unsure_categories=frozenset({"gambling"}))
    asked = one(badge("no-bets", rule), unsure)
    assert asked.earned == [] and "gambling" in (asked.waiting or "")
    # A badge that does not read the unsure category is decided all the same.
    assert one(badge("first", {"kind": "milestone", "targetMinor": 1}), unsure).waiting is None


def test_real_time_and_comparative_badges_are_not_decided_here() -> None:
    spec = BadgeSpec.model_validate({"name": "c", "rule": {"kind": "count", "eventType": "voting", "target": 1}})
    snap = snapshot(months((1, 0, 0, 0)), date(2026, 1, 31))
    assert decide([BadgeDefinition.from_spec("c", 1, spec)], snap) == []


def test_verdicts_become_progress_and_awards_once_and_never_move_back() -> None:
    from datetime import UTC, datetime

    from badges.domain.financial import apply_verdicts
    from badges.domain.rules import BadgeState

    first = badge("first", {"kind": "milestone", "targetMinor": 100_000})
    now = datetime(2026, 4, 1, tzinfo=UTC)
    halfway = Verdict(badge_id="first", version=1, value=50_000, target=100_000, earned=[])
    done = Verdict(badge_id="first", version=1, value=100_000, target=100_000, earned=["1"])
    one_step = apply_verdicts(BadgeState(), [halfway], [first], seq=1, now=now)
    assert [(p.value, p.target, p.kind) for p in one_step.progress] == [(50_000, 100_000, "milestone")]
    assert one_step.awards == [] and one_step.state.financial_seq == 1
    awarded = apply_verdicts(one_step.state, [done], [first], seq=2, now=now)
    assert [(a.badge_id, a.instance) for a in awarded.awards] == [("first", "1")]
    # A stale evaluation (an older seq) changes nothing; the same award is never made twice.
    stale = apply_verdicts(awarded.state, [halfway], [first], seq=1, now=now)
    assert stale.state == awarded.state and not stale.progress
    again = apply_verdicts(awarded.state, [done], [first], seq=3, now=now)
    assert again.awards == [] and again.progress == []
    # A verdict for another version of the badge, or an unknown badge, is dropped.
    other = Verdict(badge_id="first", version=2, value=1, target=1, earned=["1"])
    unknown = Verdict(badge_id="nope", version=1, value=1, target=1, earned=["1"])
    assert apply_verdicts(BadgeState(), [other, unknown], [first], seq=1, now=now).progress == []
