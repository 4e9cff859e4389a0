"""The shipped catalogue file parses, and broken catalogues are refused with the field named."""

from __future__ import annotations

from importlib import resources
from textwrap import dedent

import pytest

from badges.domain.catalogue import LEGACY_CATALOGUE, CatalogueError, parse_catalogue
from badges.domain.definitions import (
    REAL_TIME_KINDS,
    BadgeDefinition,
    DistinctRule,
    MoneyReward,
    PointsReward,
    StreakRule,
    TiersRule,
)


def shipped_text() -> str:
    return resources.files("badges").joinpath("catalogue.yaml").read_text(encoding="utf-8")


def test_the_shipped_catalogue_parses_with_every_rule_kind() -> None:
    catalogue = parse_catalogue(shipped_text())
    kinds = {spec.rule.kind for spec in catalogue.badges.values()}
    assert kinds == REAL_TIME_KINDS | {
        "milestone",
        "avoidance",
        "improvement",
        "sustained",
        "buffer",
        "goal",
        "comparative",
    }
    rewards = {type(spec.reward) for spec in catalogue.badges.values() if spec.reward is not None}
    assert rewards == {PointsReward, MoneyReward}


def test_the_shipped_catalogue_keeps_the_legacy_badges_as_they_were() -> None:
    catalogue = parse_catalogue(shipped_text())
    for legacy in LEGACY_CATALOGUE:
        spec = catalogue.badges[legacy.badge_id]
        assert BadgeDefinition.from_spec(legacy.badge_id, 1, spec) == legacy


def test_the_shipped_catalogue_has_the_named_real_time_badges() -> None:
    badges = parse_catalogue(shipped_text()).badges
    weekly = badges["weekly-regular"].rule
    assert isinstance(weekly, StreakRule) and (weekly.event_type, weekly.unit, weekly.length) == (
        "attendance",
        "day",
        7,
    )
    collector = badges["calculator-collector"].rule
    assert isinstance(collector, DistinctRule) and (collector.field, collector.target) == ("calculatorId", 5)
    tiers = [spec.rule for spec in badges.values() if isinstance(spec.rule, TiersRule)]
    assert [tier.name for tier in tiers[0].tiers] == ["bronze", "silver", "gold"]
    comparative = [spec for spec in badges.values() if spec.rule.kind == "comparative"]
    assert comparative[0].config.comparative_analytics is not None
    assert comparative[0].config.comparative_analytics.percentile_targets == [95, 99]


def refused(text: str) -> CatalogueError:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(dedent(text))
    return caught.value


def test_a_field_error_names_the_field_path_without_union_tags() -> None:
    error = refused("""
        badges:
          weekly-regular:
            name: Weekly regular
            rule: {kind: streak, eventType: attendance, length: 1}
    """)
    assert error.path == "badges.weekly-regular.rule.length"
    assert "greater than or equal to 2" in error.message
    assert str(error).startswith("badges.weekly-regular.rule.length: ")


def test_tiers_not_ascending() -> None:
    error = refused("""
        badges:
          civic-voice:
            name: Civic voice
            rule:
              kind: tiers
              eventType: voting
              tiers: [{name: bronze, target: 10}, {name: silver, target: 5}]
    """)
    assert (error.path, error.message) == ("badges.civic-voice.rule.tiers", "tier targets must strictly increase")


def test_a_field_inside_a_tier_is_named_with_its_index() -> None:
    error = refused("""
        badges:
          civic-voice:
            name: Civic voice
            rule:
              kind: tiers
              eventType: voting
              tiers: [{name: bronze, target: 10}, {name: Silver, target: 50}]
    """)
    assert error.path == "badges.civic-voice.rule.tiers.1.name"


def test_improvement_without_behavior_tracking() -> None:
    error = refused("""
        badges:
          spending-trimmer:
            name: Spending trimmer
            rule: {kind: improvement, category: spending}
            config: {openBanking: {}}
    """)
    assert error.path == "badges.spending-trimmer.config.behaviorTracking"


def test_improvement_whose_tracking_does_not_list_its_category() -> None:
    error = refused("""
        badges:
          spending-trimmer:
            name: Spending trimmer
            rule: {kind: improvement, category: spending}
            config:
              openBanking: {}
              behaviorTracking: {trackingPeriod: monthly, improvementThreshold: 0.1, categories: [savings]}
    """)
    assert error.path == "badges.spending-trimmer.config.behaviorTracking.categories"


def test_an_unknown_field() -> None:
    error = refused("""
        badges:
          busy-week:
            name: Busy week
            rule: {kind: window, eventType: attendance, target: 5, withinDays: 7, withinHours: 3}
    """)
    assert error.path == "badges.busy-week.rule.withinHours"
    assert "not permitted" in error.message


def test_percentile_targets_out_of_range() -> None:
    error = refused("""
        badges:
          top-saver:
            name: Top saver
            rule: {kind: comparative, metric: savings_rate}
            config:
              comparativeAnalytics: {comparisonGroups: [postcode], percentileTargets: [95, 101]}
    """)
    assert error.path == "badges.top-saver.config.comparativeAnalytics.percentileTargets"
    assert "between 50 and 99" in error.message


def test_a_reward_field_and_an_unknown_kind() -> None:
    error = refused("""
        badges:
          a:
            name: A
            rule: {kind: count, eventType: voting, target: 1}
            reward: {kind: money, amountMinor: 0}
          b:
            name: B
            rule: {kind: sometimes, eventType: voting}
    """)
    assert error.path == "badges.a.reward.amountMinor"
    assert [path for path, _ in error.problems] == ["badges.a.reward.amountMinor", "badges.b.rule"]
    assert str(error).endswith("(and 1 more problem)")


def test_a_bad_badge_id_and_an_empty_catalogue() -> None:
    assert refused("badges:\n  Bad Id:\n    name: x\n    rule: {kind: count, eventType: voting, target: 1}\n").path == (
        "badges.Bad Id.[key]"
    )
    assert refused("badges: {}\n").path == "badges"
    assert refused("").path == ""


def test_a_repeated_badge_id_is_refused_not_silently_replaced() -> None:
    error = refused("""
        badges:
          a: {name: A, rule: {kind: count, eventType: voting, target: 1}}
          a: {name: A again, rule: {kind: count, eventType: voting, target: 2}}
    """)
    assert error.path == "badges.a" and "line 4" in error.message


def test_yaml_syntax_errors_are_catalogue_errors() -> None:
    error = refused("badges: {a: [\n")
    assert error.path == "" and "not valid YAML" in error.message
