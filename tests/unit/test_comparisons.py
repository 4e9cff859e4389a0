"""Where a member stands against released peer statistics: the percentile estimate, its
uncertainty, means, and the comparative badge's rule that the uncertainty must be cleared."""

from __future__ import annotations

import math
from datetime import date

import pytest

from badges.domain.behaviour import PercentileEstimate, comparative_instances
from badges.domain.definitions import ComparativeConfig, ComparativeRule
from badges.domain.peers import PeerInput
from badges.insights.comparisons import (
    Mean,
    Quantile,
    change_of,
    compare_to_mean,
    estimate_percentile,
    own_value,
    parse_statistics,
    previous_month_value,
    threshold_of,
)
from tests.support import top_saver

BOUNDS = (-1.0, 1.0)
RELEASED = [Quantile(50, 0.10, 3.0), Quantile(95, 0.30, 1.5), Quantile(99, 0.45, 1.0)]


def test_statistics_are_read_generically_with_their_errors() -> None:
    stats = parse_statistics(
        {
            "savingsRate.p95": 0.3,
            "savingsRate.p95.error": 1.5,
            "savingsRate.p50": 0.1,
            "salary.p50": 250_000.0,
            "spending.groceries.mean": 31_000.5,
            "spending.groceries.mean.error": 900.0,
            "contacts.p99": None,  # no candidate won
            "other": "text",
        }
    )
    assert [q.alpha for q in stats.quantiles["savingsRate"]] == [50, 95]
    assert stats.quantiles["savingsRate"][1] == Quantile(95, 0.3, 1.5)
    assert stats.quantiles["savingsRate"][0].error is None  # an older release: unknown
    assert stats.quantiles["salary"] == [Quantile(50, 250_000.0, None)]
    assert stats.means == {"spending.groceries": Mean(31_000.5, 900.0)}
    assert stats.metrics() == ["salary", "savingsRate", "spending.groceries"]


def test_the_estimate_is_exact_at_a_released_percentile_with_that_percentiles_error() -> None:
    found = estimate_percentile(0.30, RELEASED, BOUNDS)
    assert found == PercentileEstimate(95.0, 93.5, 96.5)


def test_between_released_percentiles_the_gap_widens_the_interval() -> None:
    found = estimate_percentile(0.375, RELEASED, BOUNDS)  # halfway between p95 and p99
    assert found is not None and found.percentile == pytest.approx(97.0)
    # error interpolated (1.25) + gap (2 · 2 / 4 = 1)
    assert found.low == pytest.approx(94.75) and found.high == pytest.approx(99.25)
    # Between the median and p95 nothing is known of the shape: the interval is wide.
    middle = estimate_percentile(0.20, RELEASED, BOUNDS)
    assert middle is not None and middle.percentile == pytest.approx(72.5)
    assert middle.low is not None and middle.high is not None
    assert middle.high - middle.low > 20
    # never beyond what is certain: between the bracketing ranks widened by their errors
    assert middle.low >= 50 - 3.0 and middle.high <= 95 + 1.5


def test_beyond_the_last_percentile_the_rank_runs_to_the_bound() -> None:
    found = estimate_percentile(1.0, RELEASED, BOUNDS)
    assert found == PercentileEstimate(100.0, 100.0, 100.0)
    lowest = estimate_percentile(-5.0, RELEASED, BOUNDS)  # clamped to the bound
    assert lowest == PercentileEstimate(0.0, 0.0, 0.0)


def test_unknown_errors_leave_the_interval_unknown() -> None:
    older = [Quantile(q.alpha, q.value, None) for q in RELEASED]
    found = estimate_percentile(0.375, older, BOUNDS)
    assert found is not None and found.percentile == pytest.approx(97.0)
    assert found.low is None and found.high is None and not found.uncertainty_known
    assert estimate_percentile(0.3, [], BOUNDS) is None


def test_noisy_percentiles_out_of_order_and_ties() -> None:
    # Noise put p99 below p95: made non-decreasing first, so p95 and p99 tie at 0.30.
    noisy = [Quantile(50, 0.10, 3.0), Quantile(95, 0.30, 1.5), Quantile(99, 0.25, 1.0)]
    found = estimate_percentile(0.30, noisy, BOUNDS)
    assert found == PercentileEstimate(97.0, 93.5, 100.0)


def test_means_are_above_or_below_only_beyond_their_error() -> None:
    assert compare_to_mean(110.0, Mean(100.0, 5.0)).standing == "above"
    assert compare_to_mean(96.0, Mean(100.0, 5.0)).standing == "about the same"
    assert compare_to_mean(90.0, Mean(100.0, 5.0)).standing == "below"
    unknown = compare_to_mean(90.0, Mean(100.0, None))
    assert unknown.standing is None and unknown.difference == -10.0


def test_own_values_and_the_previous_month() -> None:
    member = PeerInput(month=date(2026, 10, 1), savings_rate=0.2, salary_minor=300_000, spending={"groceries": 100})
    assert own_value(member, "savingsRate") == 0.2
    assert own_value(member, "salary") == 300_000.0
    assert own_value(member, "spending.groceries") == 100.0
    assert own_value(member, "spending.gambling") == 0.0
    assert own_value(member, "contacts") is None
    document = {
        "months": [
            {"month": "2026-08-01", "complete": True, "savingsRate": 0.05, "spendingByCategory": {}},
            {"month": "2026-09-01", "complete": True, "savingsRate": 0.12, "spendingByCategory": {"groceries": 150}},
            {"month": "2026-10-01", "complete": True, "savingsRate": 0.2},
            {"month": "2026-11-01", "complete": False, "savingsRate": 0.9},
        ]
    }
    assert previous_month_value(document, date(2026, 10, 1), "savingsRate") == (date(2026, 9, 1), 0.12)
    assert previous_month_value(document, date(2026, 10, 1), "spending.groceries") == (date(2026, 9, 1), 150.0)
    assert previous_month_value(document, date(2026, 8, 1), "savingsRate") is None
    assert previous_month_value(document, date(2026, 10, 1), "salary") is None
    change = change_of("savingsRate", 0.2, date(2026, 9, 1), 0.12)
    assert change.verdict == "better" and change.change == pytest.approx(0.08)
    assert change_of("spending.groceries", 100.0, date(2026, 9, 1), 150.0).verdict is None


# --- the comparative badge's rule ------------------------------------------------------------

PEERS = ComparativeConfig(comparison_groups=["postcode"], percentile_targets=[95, 99])
TOP_SAVER = ComparativeRule(metric="savings_rate")


def instances(value: float, released: list[Quantile]) -> list[str]:
    thresholds = {t: v for t in (95, 99) if (v := threshold_of(released, t, True)) is not None}
    return comparative_instances(TOP_SAVER, PEERS, value, thresholds, estimate_percentile(value, released, BOUNDS))


def test_a_member_inside_the_uncertainty_band_clears_nothing() -> None:
    # At the released p95 and a little past it: the released value is reached, the rank's low
    # end is not (the old rule awarded p95 here).
    assert instances(0.30, RELEASED) == []
    assert instances(0.32, RELEASED) == []
    old_rule_would = 0.32 >= 0.30
    assert old_rule_would


def test_a_member_clearly_above_clears_the_target() -> None:
    assert instances(0.44, RELEASED) == ["p95"]
    assert instances(0.46, RELEASED) == ["p95"]  # past p99, not clear of its uncertainty
    assert instances(0.95, RELEASED) == ["p95", "p99"]


def test_without_errors_nothing_is_awarded() -> None:
    older = [Quantile(q.alpha, q.value, None) for q in RELEASED]
    assert instances(0.95, older) == []


def test_with_exact_percentiles_the_threshold_alone_decides() -> None:
    exact = [Quantile(q.alpha, q.value, 0.0) for q in RELEASED]
    assert instances(0.2999, exact) == []
    assert instances(0.30, exact) == ["p95"]
    assert instances(0.45, exact) == ["p95", "p99"]


def test_comparative_lower_is_better() -> None:
    rule = ComparativeRule(metric="monthly_savings_minor", higher_is_better=False)
    released = [Quantile(1, 100.0, 0.5), Quantile(5, 500.0, 1.0), Quantile(50, 2_000.0, 2.0)]
    bounds = (0.0, 10_000.0)

    def decided(value: float) -> list[str]:
        thresholds = {t: v for t in (95, 99) if (v := threshold_of(released, t, False)) is not None}
        return comparative_instances(rule, PEERS, value, thresholds, estimate_percentile(value, released, bounds))

    assert decided(501) == []
    assert decided(490) == []  # at the threshold but inside its band
    assert decided(150) == ["p95"]
    assert decided(0) == ["p95", "p99"]


def test_targets_without_a_released_value_or_with_nan_are_not_reached() -> None:
    standing = PercentileEstimate(99.9, 99.5, 100.0)
    assert comparative_instances(TOP_SAVER, PEERS, 0.9, {99: 0.5}, standing) == ["p99"]
    assert comparative_instances(TOP_SAVER, PEERS, 0.9, {}, standing) == []
    assert comparative_instances(TOP_SAVER, PEERS, 0.9, {95: math.nan, 99: 0.5}, standing) == ["p99"]
    assert comparative_instances(TOP_SAVER, PEERS, math.nan, {95: 0.1, 99: 0.2}, standing) == []
    assert comparative_instances(TOP_SAVER, PEERS, 0.9, {95: 0.1}, None) == []


def test_a_members_groups_walk_their_hierarchy_finest_first_up_to_everyone() -> None:
    from badges.insights.comparisons import level_of, member_groups, parents

    member = PeerInput(postcode_district="sw1a", salary_bracket="30-45k")
    groups = member_groups(
        member, {"contacts": "k3"}, ["postcode", "salary_bracket", "dependants", "segment", "contacts"]
    )
    assert groups["postcode"][0] == ("district", "SW1A") and groups["postcode"][1] == ("area", "SW")
    assert groups["postcode"][-1] == ("all", "all") and len(groups["postcode"]) == 4
    assert groups["salary_bracket"] == [("salary_bracket", "30-45k"), ("salary_band", "30-60k"), ("all", "all")]
    assert groups["dependants"] == [("all", "all")]  # none of their own: everyone only
    assert groups["segment"] == [("all", "all")]  # no demographics, no segment
    assert groups["contacts"] == [("contacts", "k3")]  # a dimension without a hierarchy here: its column
    assert level_of("postcode", "SW1A") == "district" and level_of("postcode", "SW") == "area"
    assert parents("postcode", "district", "SW1A")[0] == ("area", "SW")
    assert parents("postcode", "nowhere", "SW1A") == []
    assert parents("age_range", "age_range", "\U000f7c80\n%©") == []  # a key no level has (fuzz found a 500)


def test_one_members_groups_are_those_the_award_step_finds_for_many() -> None:
    """`member_groups` (a request, plain Python) agrees with `members_groups` (the award step, a
    frame of many), odd inputs included."""
    from badges.insights.comparisons import _member_groups, members_groups

    dimensions = ["postcode", "salary_bracket", "dependants", "age_range", "segment", "contacts"]
    members = [
        (PeerInput(postcode_district="sw1a", salary_bracket="30-45k", dependants=5, age_range="25-34"), {}),
        (PeerInput(postcode_district=" m1 ", salary_bracket="<20k", dependants=0, age_range="65+"), {"contacts": 7}),
        (PeerInput(postcode_district="ZZ99", salary_bracket="nonsense", dependants=None, age_range=None), {}),
        (PeerInput(), {"contacts": "k1"}),
    ]
    for dimension in dimensions:
        many = members_groups(members, dimension)
        for (member, other), groups in zip(members, many, strict=True):
            assert _member_groups(member, other, [dimension])[dimension] == groups, (member, dimension)


def test_the_lowest_threshold_bounds_who_can_clear_a_target() -> None:
    from badges.insights.comparisons import GroupStatistics, lowest_threshold

    badge = top_saver()
    groups = [
        ("postcode", GroupStatistics({"savingsRate": RELEASED})),
        ("postcode", GroupStatistics({"savingsRate": [Quantile(95, 0.22, 2.0)]})),
        ("salary_bracket", GroupStatistics({"savingsRate": [Quantile(95, 0.01, 2.0)]})),  # not the badge's
    ]
    assert lowest_threshold(badge, groups) == 0.22
    assert lowest_threshold(badge, []) == math.inf


def test_a_verdict_is_unrecordable_when_its_badge_changed_unless_it_was_recorded_before() -> None:
    from datetime import UTC, datetime

    from badges.domain.comparative import record_comparative, unrecordable
    from badges.domain.financial import Verdict
    from badges.domain.rules import BadgeState

    verdict = Verdict(badge_id="top-saver", version=1, value=99, target=95, earned=["p95-r1"])
    assert unrecordable(BadgeState(), [verdict], [top_saver(1)]) == []
    [(dropped, why)] = unrecordable(BadgeState(), [verdict], [top_saver(2)])
    assert dropped == verdict and "version 1" in why and "version 2" in why
    assert unrecordable(BadgeState(), [verdict], [])[0][1] == "top-saver is no longer an active badge"
    # Recorded under version 1, then sent again after version 2 came: it was delivered.
    held = record_comparative(BadgeState(), [verdict], [top_saver(1)], datetime(2026, 12, 1, tzinfo=UTC)).state
    assert unrecordable(held, [verdict], [top_saver(2)]) == []
