"""The peer-statistics release (badges/insights/peers.py): the privacy loss it reports is the
privacy map of what it ran, the budget goes to what is used, small groups roll up the hierarchy on
their noisy counts, every value carries its 95 % interval, the Schedule is paced by the budget
accrued, and the budget refuses what would exceed it."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import opendp.prelude as dp
import pytest

from badges.db.peers import BUDGET_PERIOD, INPUT_COLUMNS, SPENDING_CATEGORIES, Budget, pace, refusal
from badges.domain.catalogue import parse_catalogue
from badges.domain.definitions import BadgeDefinition
from badges.domain.peers import PeerInput, peer_input
from badges.insights.peers import (
    DIMENSIONS,
    INPUT_SCHEMA,
    SALARY_CANDIDATES,
    SAVINGS_RATE_CANDIDATES,
    SPENDING_BOUNDS_MINOR,
    Level,
    ReleasePlan,
    levels,
    peer_frame,
    plan_for,
    postcode_districts,
    release,
    roll_up,
    threshold,
)

BADGES = (("postcode", (95, 99)), ("salary_bracket", (95, 99)))
PLAN = ReleasePlan(dimensions=DIMENSIONS, targets=BADGES, epsilon=1.0, min_group_size=20)
# A budget large enough that a few thousand members give tight intervals, and thresholds that let
# a too-small group through on noise once in a billion releases rather than once in twenty
# (`FALSE_PASS`): what a test asserting that none passed needs.
SURE = replace(PLAN, epsilon=10.0, false_pass=1e-9)


def members(district: str, count: int, rng: random.Random, bracket: str = "30-45k") -> list[PeerInput]:
    return [
        PeerInput(
            savings_rate=rng.gauss(0.1, 0.15),
            salary_minor=int(rng.lognormvariate(12, 0.4)),
            spending={"groceries": rng.randint(20_000, 40_000), "gambling": 400_000},
            postcode_district=district,
            salary_bracket=bracket,
            dependants=rng.randint(0, 4),
            age_range="25-34",
        )
        for _ in range(count)
    ]


@pytest.fixture(scope="module")
def population() -> list[PeerInput]:
    rng = random.Random(13)
    # SW1A and N1 are large; LS1 and LS2 are small but make a large Leeds area between them;
    # M1 is small, alone in its area, and its region has nothing else.
    return (
        members("SW1A", 1500, rng)
        + members("N1", 900, rng, bracket="60-80k")
        + members("LS1", 150, rng)
        + members("LS2", 150, rng)
        + members("M1", 150, rng, bracket="<20k")
    )


def test_the_recorded_privacy_loss_is_the_privacy_map_of_the_measurements_run(
    population: list[PeerInput], monkeypatch: pytest.MonkeyPatch
) -> None:
    run: list[Any] = []
    invoke = dp.Context.__call__

    def spy(context: dp.Context, measurement: dp.Measurement) -> Any:
        run.append(measurement)
        return invoke(context, measurement)

    monkeypatch.setattr(dp.Context, "__call__", spy)
    result = release(peer_frame(population), PLAN)

    maps = [float(measurement.map(1)) for measurement in run]
    # One measurement a roll-up count, one a dimension's statistics (all four have groups here).
    assert len(run) == len(PLAN.count_levels()) + len(PLAN.dimensions)
    # Each measurement's map is the sum of its statistics' own (recorded) maps, and the release's
    # loss is what the compositors that ran them account (which every map fitted into).
    recorded: dict[int, float] = defaultdict(float)
    for query in result.queries:
        recorded[query.query] += query.epsilon
    assert [recorded[index] for index in range(len(run))] == pytest.approx(maps, rel=1e-9)
    assert result.epsilon == pytest.approx(sum(result.phase_epsilons), rel=1e-12)
    assert sum(maps) == pytest.approx(result.epsilon, rel=1e-6) and sum(maps) <= result.epsilon + 1e-12
    assert result.epsilon == pytest.approx(PLAN.epsilon, rel=1e-9) and result.delta == 0.0
    # The members with a savings rate and an income.
    assert result.population == len(population)


def test_the_budget_goes_to_the_badge_percentiles_and_every_dimension_places_a_member() -> None:
    shipped = parse_catalogue(resources.files("badges").joinpath("catalogue.yaml").read_text(encoding="utf-8"))
    catalogue = [BadgeDefinition.from_spec(badge_id, 1, spec) for badge_id, spec in shipped.badges.items()]
    plan = plan_for(catalogue, epsilon=2.0, min_group_size=5)
    # The top-saver badge: postcode and salary bracket, p95 and p99, ε = 1, groups of 20 or more.
    assert plan.dimensions == DIMENSIONS and dict(plan.targets) == dict(BADGES)
    assert plan.epsilon == 1.0 and plan.min_group_size == 20
    shares = {d: {s.key: plan.share(s.weight) for s in plan.statistics(d)} for d in plan.dimensions}
    counts, statistics = plan.split()
    assert counts + statistics == pytest.approx(1.0) and counts <= 0.06
    for dimension in ("postcode", "salary_bracket"):
        # The percentile most awards are decided on gets the largest share by far: enough for the
        # accuracy target (|DP p95 - true p95| within 2 points in 90 % of groups of 1,000).
        assert shares[dimension]["savingsRate.p95"] >= 0.35
        assert max(shares[dimension], key=shares[dimension].__getitem__) == "savingsRate.p95"
        assert 0 < shares[dimension]["savingsRate.p99"] < shares[dimension]["savingsRate.p95"] / 5
    for dimension in DIMENSIONS:
        keys = set(shares[dimension])
        # Enough to place a member: savings rate and salary quartiles, mean spending by category.
        assert {"count", "savingsRate.p25", "savingsRate.p50", "savingsRate.p75"} <= keys
        assert {"salary.p25", "salary.p50", "salary.p75"} <= keys
        assert {f"spending.{category}.mean" for category in SPENDING_BOUNDS_MINOR} <= keys
        if dimension in ("dependants", "age_range"):
            assert "savingsRate.p95" not in keys and sum(shares[dimension].values()) < 0.05
    assert sum(sum(s.values()) for s in shares.values()) + counts == pytest.approx(plan.epsilon)


def test_small_groups_roll_up_to_the_first_level_large_enough() -> None:
    rng = random.Random(7)
    # SW1A and N1 are large; LS1 and LS2 are small, but Leeds between them is large enough; M1
    # and WA1 are small, and so are their areas, but together the North West is large enough.
    population = (
        members("SW1A", 300, rng)
        + members("N1", 200, rng)
        + members("LS1", 18, rng)
        + members("LS2", 18, rng)
        + members("M1", 15, rng)
        + members("WA1", 15, rng)
    )
    # At ε = 200 the counts' noise (scale 0.4 or less) is far smaller than every margin below.
    plan = ReleasePlan(dimensions=("postcode",), targets=(("postcode", (95,)),), epsilon=200.0, min_group_size=20)
    result = release(peer_frame(population), plan)
    scales = {q.name.removeprefix("count by "): q.scale for q in result.queries if q.phase == "counts"}
    for level in levels("postcode"):
        assert result.thresholds[level.name] == pytest.approx(threshold(plan, scales[level.name], len(level.keys)))
        assert 20 < result.thresholds[level.name] < 23
    postcode = {(g.level, g.key): g for g in result.groups}
    assert set(postcode) == {("district", "SW1A"), ("district", "N1"), ("area", "LS"), ("region", "North West")}
    assert result.rolled_up == {"postcode": 2}
    assert abs(postcode["area", "LS"].noisy_count - 36) < 10
    assert abs(postcode["region", "North West"].noisy_count - 30) < 10
    assert {"savingsRate.p50", "savingsRate.p95", "salary.p50", "spending.groceries.mean"} <= set(
        postcode["district", "SW1A"].values
    )


def test_no_empty_group_is_published_on_noise_alone(population: list[PeerInput]) -> None:
    result = release(peer_frame(population), SURE)
    districts = {g.key for g in result.groups if g.dimension == "postcode" and g.level == "district"}
    # Of more than 12,000 public district keys, only those with members (and enough of them).
    assert districts == {"SW1A", "N1"}
    sw1a = next(g for g in result.groups if g.key == "SW1A")
    assert abs(sw1a.noisy_count - 1500) < 200
    assert abs(sw1a.values["savingsRate.p95"] - 0.35) < 0.1  # type: ignore[operator]


def test_spending_means_are_released_clamped_to_their_bounds(population: list[PeerInput]) -> None:
    # Thirteen sums on a small share are noisy: a budget that makes 1,500 members' means tight.
    result = release(peer_frame(population), replace(SURE, epsilon=200.0))
    sw1a = next(g for g in result.groups if g.key == "SW1A")
    groceries = [p.spending["groceries"] for p in population if p.postcode_district == "SW1A"]
    true_mean = sum(groceries) / len(groceries)
    mean, error = sw1a.values["spending.groceries.mean"], sw1a.values["spending.groceries.mean.error"]
    assert mean is not None and error is not None and 0 < error < 10_000
    assert abs(mean - true_mean) <= error
    # Everyone spent £4,000 on gambling: clamped to the category's bound (£500) before the sum.
    gambling, gambling_error = sw1a.values["spending.gambling.mean"], sw1a.values["spending.gambling.mean.error"]
    assert gambling is not None and gambling_error is not None
    assert gambling <= SPENDING_BOUNDS_MINOR["gambling"] and abs(gambling - 50_000) <= gambling_error
    # A category nobody spent on has a mean near 0, never below.
    assert 0 <= (sw1a.values["spending.cash.mean"] or 0) <= (sw1a.values["spending.cash.mean.error"] or 0)


def test_every_value_carries_a_95_percent_interval_that_holds_its_true_rank() -> None:
    rng = random.Random(29)
    population = members("SW1A", 6000, rng)
    rates = sorted(p.savings_rate or 0.0 for p in population)
    salaries = sorted(float(min(max(p.salary_minor or 0, 10_000), 2_000_000)) for p in population)
    checked, within = 0, 0
    for _ in range(3):
        result = release(peer_frame(population), SURE)
        for group in result.groups:
            assert group.values["count.error"] is not None and group.values["count.error"] > 0
            for key, value in group.values.items():
                if key.endswith(".error") or value is None:
                    continue
                error = group.values[f"{key}.error"]
                assert error is not None, key
                if not key.startswith(("savingsRate.p", "salary.p")) or error >= 50:
                    continue
                alpha = int(key.rsplit(".p", 1)[1])
                grid = SAVINGS_RATE_CANDIDATES if key.startswith("savings") else SALARY_CANDIDATES
                assert value in grid
                values = rates if key.startswith("savings") else salaries
                below = sum(1 for v in values if v < value) / len(values) * 100
                at_or_below = sum(1 for v in values if v <= value) / len(values) * 100
                # The ranks the released value occupies reach within `error` points of alpha.
                distance = max(0.0, below - alpha, alpha - at_or_below)
                checked += 1
                within += distance <= error
                # (The interval is a union bound: twice its width is never missed in practice.)
                assert distance <= 2 * error + 0.5, (key, value, error, below, at_or_below)
    assert checked >= 30 and within >= 0.9 * checked


def test_a_remainder_is_published_only_when_it_is_large_enough() -> None:
    hierarchy = (
        Level("district", ("A1", "A2", "B1"), lambda d: d[0]),
        Level("area", ("A", "B"), lambda a: "all"),
        Level("all", ("all",), lambda a: "all"),
    )
    noisy = {"district": {"A1": 500, "A2": 40, "B1": 30}, "area": {"A": 545, "B": 35}, "all": {"all": 580}}
    cuts = {"district": 100.0, "area": 100.0, "all": 100.0}
    # A2's 40 are too few for a group of their own, and A's remainder (545 - 500) too: they and
    # B's 35 make up the remainder at the top, still too few. Only A1 is published.
    assert roll_up(hierarchy, noisy, cuts, 20) == [("district", "A1")]
    noisy["district"]["A2"] = 90
    noisy["area"]["A"] = 700  # A's remainder is 200 now: published as the area
    assert roll_up(hierarchy, noisy, cuts, 20) == [("district", "A1"), ("area", "A")]


def test_the_keys_are_public_not_from_the_data() -> None:
    districts = postcode_districts()
    assert {"SW1A", "N1", "LS2", "M1", "EC4V"} <= set(districts) and len(districts) > 12_000
    assert [level.name for level in levels("postcode")] == ["district", "area", "region", "all"]
    assert [level.name for level in levels("salary_bracket")] == ["salary_bracket", "salary_band", "all"]


def test_the_database_reads_the_columns_the_release_expects() -> None:
    assert INPUT_COLUMNS == INPUT_SCHEMA
    assert tuple(SPENDING_BOUNDS_MINOR) == SPENDING_CATEGORIES


def test_a_population_too_small_for_any_group_spends_only_the_counts_share() -> None:
    rng = random.Random(3)
    result = release(peer_frame(members("SW1A", 5, rng)), SURE)
    assert result.groups == []
    assert {query.phase for query in result.queries} == {"counts"}
    # The counts' compositor accounts its whole share; the statistics' is not spent.
    assert result.epsilon == pytest.approx(SURE.split()[0])


START = datetime(2030, 1, 1, tzinfo=UTC)
BUDGET = Budget(per_release=1.0, per_year=12.0)


def test_the_schedule_releases_only_when_the_yearly_budget_has_accrued_enough() -> None:
    # The first release is due at once.
    assert pace(START, None, [], 1.0, BUDGET).due
    spent = [(START, 1.0)]
    # The next day, one twelfth of a year has not yet accrued: not due, and when it will be.
    found = pace(START + timedelta(days=1), START, spent, 1.0, BUDGET)
    assert not found.due and found.next_due == START + BUDGET_PERIOD / 12
    assert pace(START + BUDGET_PERIOD / 12, START, spent, 1.0, BUDGET).due
    # Run daily, the Schedule releases twelve times a year, evenly, and never more.
    released, entries = [], []
    for day in range(3 * 365):
        now = START + timedelta(days=day)
        if pace(now, START if entries else None, entries, 1.0, BUDGET).due:
            released.append(day)
            entries.append((now, 1.0))
    assert len(released) == 36 and all(29 <= b - a <= 32 for a, b in itertools.pairwise(released))
    for day in range(0, 3 * 365, 7):
        window = [d for d in released if day - 365 < d <= day]
        assert len(window) <= 12


def test_every_kind_of_release_in_the_ledger_counts_against_the_pace() -> None:
    # An on-demand release of ε = 11.5 a month after the first: the Schedule waits until it
    # leaves the 365-day window, even though a year's accrual is there before that.
    spent = [(START, 1.0), (START + timedelta(days=30), 11.5)]
    found = pace(START + timedelta(days=200), START, spent, 1.0, BUDGET)
    assert not found.due and found.next_due == START + timedelta(days=30) + BUDGET_PERIOD
    # Over the yearly budget by itself: never due.
    assert pace(START, START, [], 13.0, BUDGET).next_due is None


def test_a_release_over_the_budget_is_refused_with_the_reason() -> None:
    budget = Budget(per_release=1.0, per_year=12.0)
    assert refusal(1.0, 11.0, budget) is None
    assert refusal(0.1, 11.9, budget) is None  # floating point does not refuse the last of it
    over_year = refusal(1.0, 11.5, budget)
    assert over_year is not None and "yearly privacy budget" in over_year and "11.5" in over_year
    over_release = refusal(1.5, 0.0, budget)
    assert over_release is not None and "at most ε = 1" in over_release


def test_a_members_inputs_come_from_their_last_complete_month_and_their_demographics() -> None:
    document = {
        "months": [
            {"month": "2026-10-01", "complete": True, "savingsRate": 0.2, "spendingByCategory": {"groceries": 100}},
            {"month": "2026-11-01", "complete": True, "savingsRate": 0.25, "spendingByCategory": {"groceries": 120}},
            {"month": "2026-12-01", "complete": False, "savingsRate": 0.9, "spendingByCategory": {}},
        ],
        "income": {"monthlyMedianMinor": 250_000},
    }
    found = peer_input(document, {"postcode": "SW1A", "ageRange": "25-34", "dependants": 0, "salaryBracket": "30-45k"})
    assert (found.savings_rate, found.salary_minor, found.spending) == (0.25, 250_000, {"groceries": 120})
    assert (found.postcode_district, found.age_range, found.dependants, found.salary_bracket) == (
        "SW1A", "25-34", 0, "30-45k"
    )  # fmt: skip
    assert peer_input(document, None).postcode_district is None


def test_a_members_keys_in_plain_python_are_the_frames() -> None:
    """`member_keys` (a single member's comparison) agrees with `peer_frame` (the release) on
    every level, odd inputs included."""
    from badges.insights.peers import key_levels, member_keys

    rng = random.Random(5)
    districts = ["sw1a", " M1 ", "EC1A", "ZZ99", "1AB", "B33", None, "w1k", "YO10"]
    members = [
        PeerInput(
            savings_rate=0.1,
            salary_minor=300_000,
            postcode_district=rng.choice(districts),
            age_range=rng.choice([None, "18-24", "35-44", "65+", "bogus"]),
            dependants=rng.choice([None, 0, 1, 2, 3, 7]),
            salary_bracket=rng.choice([None, "<20k", "30-45k", "100k+", "bogus"]),
        )
        for _ in range(300)
    ]
    frame = peer_frame(members)
    named = key_levels()
    for index, member in enumerate(members):
        from_frame = {
            name: None if frame[name][index] is None else named[name].keys[frame[name][index]]
            for name in frame.columns
            if name in named
        }
        assert member_keys(member) == from_frame, member
