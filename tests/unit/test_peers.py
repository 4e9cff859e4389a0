"""The peer-statistics release (badges/insights/peers.py): the privacy loss it reports is the
privacy map of what it ran, small groups roll up the hierarchy on their noisy counts, and the
budget refuses what would exceed it."""

from __future__ import annotations

import random
from dataclasses import replace
from importlib import resources
from typing import Any

import opendp.prelude as dp
import pytest

from badges.db.peers import Budget, refusal
from badges.domain.catalogue import parse_catalogue
from badges.domain.definitions import BadgeDefinition
from badges.domain.peers import PeerInput, peer_input
from badges.insights.peers import (
    Level,
    ReleasePlan,
    levels,
    peer_frame,
    plan_for,
    postcode_districts,
    release,
    roll_up,
)

PLAN = ReleasePlan(dimensions=("postcode", "salary_bracket"), percentiles=(95, 99), epsilon=1.0, min_group_size=20)
# The same, with thresholds that let a too-small group through on noise once in a billion
# releases rather than once in twenty (`FALSE_PASS`): what a test asserting that none passed needs.
SURE = replace(PLAN, false_pass=1e-9)


def members(district: str, count: int, rng: random.Random, bracket: str = "30-45k") -> list[PeerInput]:
    return [
        PeerInput(
            savings_rate=rng.gauss(0.1, 0.15),
            salary_minor=int(rng.lognormvariate(12, 0.4)),
            postcode_district=district,
            salary_bracket=bracket,
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
        + members("M1", 200, rng, bracket="<20k")
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
    assert len(run) == len(result.queries) == len(PLAN.weights()[0]) + len(PLAN.weights()[1])
    # Each query's record is its measurement's own map, and the release's loss is what the
    # compositors that ran them account (which every map fitted into).
    assert [query.epsilon for query in result.queries] == pytest.approx(maps, rel=1e-12)
    assert result.epsilon == pytest.approx(sum(result.phase_epsilons), rel=1e-12)
    assert sum(maps) == pytest.approx(result.epsilon, rel=1e-6) and sum(maps) <= result.epsilon + 1e-12
    assert result.epsilon == pytest.approx(PLAN.epsilon, rel=1e-9) and result.delta == 0.0
    assert result.population == len(population)
    # Every count has the same noise, and each percentile its own share.
    assert {round(q.scale, 6) for q in result.queries if q.mechanism == "integer Laplace"} == {
        round(1 / result.queries[0].epsilon, 6)
    }


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
    # At ε = 20 the counts' noise (scale 0.55) is far smaller than every margin below.
    plan = ReleasePlan(dimensions=("postcode",), percentiles=(95,), epsilon=20.0, min_group_size=20)
    result = release(peer_frame(population), plan)
    # Cuts at 26.5, 23.9 and 22.7: the more keys a level has, the higher its cut.
    assert 27 > result.thresholds["district"] > 25 > result.thresholds["area"] > 23.5 > result.thresholds["region"]
    postcode = {(g.level, g.key): g for g in result.groups}
    assert set(postcode) == {("district", "SW1A"), ("district", "N1"), ("area", "LS"), ("region", "North West")}
    assert result.rolled_up == {"postcode": 2}
    assert abs(postcode["area", "LS"].noisy_count - 36) < 10
    assert abs(postcode["region", "North West"].noisy_count - 30) < 10
    assert set(postcode["district", "SW1A"].values) == {"savingsRate.p50", "savingsRate.p95", "salary.p50"}


def test_no_empty_group_is_published_on_noise_alone(population: list[PeerInput]) -> None:
    result = release(peer_frame(population), SURE)
    districts = {g.key for g in result.groups if g.dimension == "postcode" and g.level == "district"}
    # Of more than 12,000 public district keys, only those with members (and enough of them).
    assert districts == {"SW1A", "N1"}
    sw1a = next(g for g in result.groups if g.key == "SW1A")
    assert abs(sw1a.noisy_count - 1500) < 200
    assert abs(sw1a.values["savingsRate.p50"] - 0.1) < 0.1  # type: ignore[operator]


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


def test_the_plan_spends_on_what_the_comparative_badges_use() -> None:
    shipped = parse_catalogue(resources.files("badges").joinpath("catalogue.yaml").read_text(encoding="utf-8"))
    catalogue = [BadgeDefinition.from_spec(badge_id, 1, spec) for badge_id, spec in shipped.badges.items()]
    plan = plan_for(catalogue, epsilon=2.0, min_group_size=5)
    # The top-saver badge: postcode and salary bracket, p95 and p99, ε = 1, groups of 20 or more.
    assert plan.dimensions == ("postcode", "salary_bracket") and plan.alphas() == [50, 95, 99]
    assert plan.epsilon == 1.0 and plan.min_group_size == 20


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


def test_a_population_too_small_for_any_group_releases_nothing_but_its_counts() -> None:
    rng = random.Random(3)
    result = release(peer_frame(members("SW1A", 5, rng)), SURE)
    assert result.groups == []
    assert {query.phase for query in result.queries} == {"counts"}
    # The compositors account the whole budget all the same: an upper bound on what was spent.
    assert result.epsilon == pytest.approx(PLAN.epsilon)
