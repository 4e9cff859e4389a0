"""Pure tests of the financial rule kinds: milestones, avoidance, improvement, peer comparison."""

from __future__ import annotations

import math
from datetime import date

import pytest

from badges.domain.behaviour import (
    BehaviourDataError,
    MonthlyCategoryTotals,
    PercentileEstimate,
    avoidance_met,
    comparative_instances,
    days_avoided,
    improvement,
    milestone_progress,
    milestone_reached,
    period_start,
)
from badges.domain.definitions import (
    AvoidanceRule,
    BehaviorTrackingConfig,
    ComparativeConfig,
    ComparativeRule,
    ImprovementRule,
    MilestoneRule,
)

# --- milestone -------------------------------------------------------------------------------


def test_milestone_reached_at_the_target_and_progress_is_clamped() -> None:
    rule = MilestoneRule(target_minor=100_000)
    assert not milestone_reached(rule, 99_999)
    assert milestone_reached(rule, 100_000) and milestone_reached(rule, 250_000)
    assert [milestone_progress(rule, v) for v in (-500, 0, 42_000, 100_000, 250_000)] == [
        0,
        0,
        42_000,
        100_000,
        100_000,
    ]


# --- avoidance -------------------------------------------------------------------------------

GAMBLING_30 = AvoidanceRule(category="gambling", window_days=30)


def test_avoidance_met_with_no_gambling_in_the_last_window() -> None:
    transactions = [(date(2026, 1, 5), "gambling"), (date(2026, 3, 1), "spending")]
    # Coverage 2026-01-01 .. 2026-03-31; the last 30 days are 03-02 .. 03-31.
    assert avoidance_met(GAMBLING_30, transactions, date(2026, 1, 1), date(2026, 3, 31))
    assert days_avoided(GAMBLING_30, transactions, date(2026, 1, 1), date(2026, 3, 31)) == 30


def test_avoidance_window_edges() -> None:
    start, end = date(2026, 1, 1), date(2026, 3, 31)
    # A bet on 03-01 is 30 days before the end: outside the last 30 days (03-02 .. 03-31).
    assert avoidance_met(GAMBLING_30, [(date(2026, 3, 1), "gambling")], start, end)
    # A bet on 03-02 is inside.
    assert not avoidance_met(GAMBLING_30, [(date(2026, 3, 2), "gambling")], start, end)
    assert days_avoided(GAMBLING_30, [(date(2026, 3, 2), "gambling")], start, end) == 29
    # A bet on the last covered day: zero clean days.
    assert days_avoided(GAMBLING_30, [(end, "gambling")], start, end) == 0


def test_avoidance_needs_enough_covered_days() -> None:
    assert not avoidance_met(GAMBLING_30, [], date(2026, 3, 3), date(2026, 3, 31))  # 29 days
    assert avoidance_met(GAMBLING_30, [], date(2026, 3, 2), date(2026, 3, 31))  # 30 days
    assert days_avoided(GAMBLING_30, [], date(2026, 3, 3), date(2026, 3, 31)) == 29


def test_avoidance_ignores_other_categories_and_data_beyond_coverage() -> None:
    transactions = [(date(2026, 3, 20), "junk_food"), (date(2026, 4, 2), "gambling")]
    assert avoidance_met(GAMBLING_30, transactions, date(2026, 1, 1), date(2026, 3, 31))


def test_avoidance_refuses_coverage_that_ends_before_it_starts() -> None:
    with pytest.raises(BehaviourDataError):
        days_avoided(GAMBLING_30, [], date(2026, 3, 31), date(2026, 3, 1))


# --- improvement -----------------------------------------------------------------------------


def month(year: int, number: int, covered: int | None = None, **totals: int) -> MonthlyCategoryTotals:
    full = (date(year + number // 12, number % 12 + 1, 1) - date(year, number, 1)).days
    return MonthlyCategoryTotals(
        month=date(year, number, 1), totals_minor=totals, covered_days=full if covered is None else covered
    )


def tracking(period: str = "monthly", threshold: float = 0.1, category: str = "spending") -> BehaviorTrackingConfig:
    return BehaviorTrackingConfig(tracking_period=period, improvement_threshold=threshold, categories=[category])


SPENDING = ImprovementRule(category="spending")
SAVINGS = ImprovementRule(category="savings")


def test_monthly_spending_down_by_the_threshold_is_met_exactly_at_the_boundary() -> None:
    months = [month(2026, 1, spending=100_000), month(2026, 2, spending=90_000)]
    result = improvement(SPENDING, tracking(), months)
    assert (result.current, result.previous, result.current_start) == (90_000, 100_000, date(2026, 2, 1))
    assert result.change_fraction == pytest.approx(0.1)
    assert result.met
    barely_short = improvement(
        SPENDING, tracking(), [month(2026, 1, spending=100_000), month(2026, 2, spending=90_001)]
    )
    assert not barely_short.met


def test_an_exact_boundary_that_floats_would_miss_is_met() -> None:
    # 10 down to 9 is exactly 10 % less; in floats 1 - 9 / 10 is 0.09999999999999998.
    assert 1 - 9 / 10 < 0.1
    months = [month(2026, 1, spending=10), month(2026, 2, spending=9)]
    assert improvement(SPENDING, tracking(threshold=0.1), months).met


def test_spending_that_rose_is_not_met_and_reports_a_negative_change() -> None:
    result = improvement(SPENDING, tracking(), [month(2026, 1, spending=1_000), month(2026, 2, spending=1_500)])
    assert result.change_fraction == pytest.approx(-0.5) and not result.met


def test_savings_higher_is_better() -> None:
    months = [month(2026, 1, savings=20_000), month(2026, 2, savings=25_000)]
    result = improvement(SAVINGS, tracking(threshold=0.2, category="savings"), months)
    assert result.change_fraction == pytest.approx(0.25) and result.met
    down = improvement(
        SAVINGS, tracking(category="savings"), [month(2026, 1, savings=25_000), month(2026, 2, savings=20_000)]
    )
    assert down.change_fraction == pytest.approx(-0.2) and not down.met


def test_the_last_incomplete_month_is_skipped() -> None:
    months = [
        month(2026, 1, spending=100_000),
        month(2026, 2, spending=80_000),
        month(2026, 3, covered=12, spending=1_000),  # still in progress
    ]
    result = improvement(SPENDING, tracking(), months)
    assert (result.current_start, result.current, result.previous) == (date(2026, 2, 1), 80_000, 100_000)
    assert result.met


def test_a_previous_period_missing_or_partial_is_not_met() -> None:
    partial = improvement(SPENDING, tracking(), [month(2026, 1, covered=20, spending=9), month(2026, 2, spending=1)])
    assert (partial.current, partial.previous, partial.met) == (1, None, False)
    gap = improvement(SPENDING, tracking(), [month(2025, 12, spending=9), month(2026, 2, spending=1)])
    assert (gap.previous, gap.met) == (None, False)
    nothing = improvement(SPENDING, tracking(), [month(2026, 2, covered=3, spending=1)])
    assert (nothing.current, nothing.met) == (None, False)


def test_quarterly_grouping_is_calendar_aligned() -> None:
    months = [month(2026, n, spending=10_000) for n in (1, 2, 3)] + [
        month(2026, 4, spending=9_000),
        month(2026, 5, spending=8_000),
        month(2026, 6, spending=7_000),
        month(2026, 7, spending=1),  # Q3 has only begun
    ]
    result = improvement(SPENDING, tracking("quarterly", threshold=0.2), months)
    assert (result.current_start, result.current, result.previous) == (date(2026, 4, 1), 24_000, 30_000)
    assert result.change_fraction == pytest.approx(0.2) and result.met


def test_a_quarter_missing_a_month_is_not_complete() -> None:
    months = [month(2026, n, spending=10_000) for n in (1, 2, 3, 4, 6)]
    result = improvement(SPENDING, tracking("quarterly"), months)
    assert (result.current_start, result.previous) == (date(2026, 1, 1), None)
    assert not result.met


def test_yearly_grouping_across_a_year_boundary() -> None:
    months = [month(2025, n, gambling=1_000) for n in range(1, 13)] + [
        month(2026, n, gambling=500) for n in range(1, 13)
    ]
    config = tracking("yearly", threshold=0.5, category="gambling")
    result = improvement(ImprovementRule(category="gambling"), config, months)
    assert (result.current_start, result.current, result.previous) == (date(2026, 1, 1), 6_000, 12_000)
    assert result.met


def test_period_start() -> None:
    assert period_start(date(2026, 11, 1), "monthly") == date(2026, 11, 1)
    assert [period_start(date(2026, m, 1), "quarterly").month for m in range(1, 13)] == [
        1,
        1,
        1,
        4,
        4,
        4,
        7,
        7,
        7,
        10,
        10,
        10,
    ]
    assert period_start(date(2026, 11, 1), "yearly") == date(2026, 1, 1)


def test_zero_previous_period() -> None:
    zero_then_saving = [month(2026, 1, savings=0), month(2026, 2, savings=5_000)]
    result = improvement(SAVINGS, tracking(category="savings"), zero_then_saving)
    assert (result.previous, result.change_fraction, result.met) == (0, None, True)
    zero_both = [month(2026, 1), month(2026, 2)]
    assert not improvement(SAVINGS, tracking(category="savings"), zero_both).met
    assert not improvement(SPENDING, tracking(), zero_both).met
    spending_from_zero = improvement(SPENDING, tracking(), [month(2026, 1), month(2026, 2, spending=100)])
    assert (spending_from_zero.change_fraction, spending_from_zero.met) == (None, False)


def test_negative_previous_savings_are_measured_by_magnitude() -> None:
    months = [month(2026, 1, savings=-10_000), month(2026, 2, savings=-5_000)]
    result = improvement(SAVINGS, tracking(category="savings"), months)
    assert result.change_fraction == pytest.approx(0.5) and result.met


def test_improvement_refuses_a_month_given_twice_and_a_month_not_on_the_first() -> None:
    with pytest.raises(BehaviourDataError):
        improvement(SPENDING, tracking(), [month(2026, 1), month(2026, 1)])
    with pytest.raises(ValueError, match="first day"):
        MonthlyCategoryTotals(month=date(2026, 1, 2), covered_days=30)


# --- comparative -----------------------------------------------------------------------------

PEERS = ComparativeConfig(comparison_groups=["postcode"], percentile_targets=[95, 99])
# A standing whose interval is certain: the released thresholds alone decide.
SURELY = {value: PercentileEstimate(value, value, value) for value in (0.0, 50.0, 96.0, 99.5, 100.0)}


def test_comparative_instances_for_each_target_reached() -> None:
    rule = ComparativeRule(metric="savings_rate")
    released = {95: 0.30, 99: 0.45}
    assert comparative_instances(rule, PEERS, 0.29, released, SURELY[100.0]) == []
    assert comparative_instances(rule, PEERS, 0.30, released, SURELY[96.0]) == ["p95"]  # at the released value
    assert comparative_instances(rule, PEERS, 0.44, released, SURELY[100.0]) == ["p95"]
    assert comparative_instances(rule, PEERS, 0.45, released, SURELY[99.5]) == ["p95", "p99"]
    # At the released value but with a rank whose low end is under the target: nothing.
    assert comparative_instances(rule, PEERS, 0.45, released, PercentileEstimate(99.5, 94.0, 100.0)) == []


def test_comparative_lower_is_better() -> None:
    rule = ComparativeRule(metric="monthly_savings_minor", higher_is_better=False)
    released = {95: 500.0, 99: 100.0}
    assert comparative_instances(rule, PEERS, 500, released, SURELY[0.0]) == ["p95"]
    assert comparative_instances(rule, PEERS, 100, released, SURELY[0.0]) == ["p95", "p99"]
    assert comparative_instances(rule, PEERS, 501, released, SURELY[0.0]) == []
    assert comparative_instances(rule, PEERS, 100, released, SURELY[50.0]) == []


def test_comparative_targets_without_a_released_value_are_not_reached() -> None:
    rule = ComparativeRule(metric="health_score")
    top = SURELY[100.0]
    assert comparative_instances(rule, PEERS, 99.0, {99: 80.0}, top) == ["p99"]
    assert comparative_instances(rule, PEERS, 99.0, {}, top) == []
    assert comparative_instances(rule, PEERS, 99.0, {95: math.nan, 99: 80.0}, top) == ["p99"]
    assert comparative_instances(rule, PEERS, math.nan, {95: 1.0, 99: 2.0}, top) == []
    assert comparative_instances(rule, PEERS, 99.0, {99: 80.0}, PercentileEstimate(100.0)) == []  # unknown
