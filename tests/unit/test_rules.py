"""Pure tests of the rule engine's shared behaviour (count badges, de-duplication, state shapes,
definition changes, re-evaluation): no servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from badges.domain.catalogue import LEGACY_CATALOGUE
from badges.domain.definitions import (
    AdvancedBadgeConfig,
    BadgeDefinition,
    CountRule,
    MilestoneRule,
    MoneyReward,
    OpenBankingConfig,
    PointsReward,
    StreakRule,
    Tier,
    TiersRule,
)
from badges.domain.events import BadgeEvent
from badges.domain.rules import DEDUP_WINDOW, Award, BadgeState, ProgressUpdate, RuleState, evaluate, reevaluate

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def event(event_id: str, type_: str = "tool_usage", minutes: int = 0, **data: object) -> BadgeEvent:
    return BadgeEvent(id=event_id, type=type_, event_data=dict(data), timestamp=T0 + timedelta(minutes=minutes))


def counts(state: BadgeState) -> dict[str, int]:
    return {badge_id: progress.count for badge_id, progress in state.badges.items()}


def count_badge(target: int, version: int = 1, badge_id: str = "counter", **extra: object) -> BadgeDefinition:
    return BadgeDefinition(
        badge_id=badge_id,
        version=version,
        name="Counter",
        rule=CountRule(event_type="tool_usage", target=target),
        **extra,
    )


# --- count badges, as before ---------------------------------------------------------------------


def test_progress_counts_matching_events_and_reports_value_after_batch() -> None:
    outcome = evaluate(BadgeState(), [event("a"), event("b")], LEGACY_CATALOGUE)
    assert counts(outcome.state) == {"calculator-explorer": 2}
    assert [(p.badge_id, p.value, p.target, p.kind, p.version) for p in outcome.progress] == [
        ("calculator-explorer", 2, 3, "count", 1)
    ]
    assert outcome.awards == []


def test_award_when_target_reached_with_time_of_the_deciding_event() -> None:
    state = evaluate(BadgeState(), [event("a"), event("b")], LEGACY_CATALOGUE).state
    outcome = evaluate(state, [event("c", minutes=5)], LEGACY_CATALOGUE)
    assert [(a.badge_id, a.instance, a.awarded_at, a.version, a.reward) for a in outcome.awards] == [
        ("calculator-explorer", "1", T0 + timedelta(minutes=5), 1, None)
    ]
    assert outcome.state.badges["calculator-explorer"].awarded == {"1": T0 + timedelta(minutes=5)}


def test_award_is_given_once_and_later_events_change_nothing() -> None:
    state = evaluate(BadgeState(), [event(str(i)) for i in range(3)], LEGACY_CATALOGUE).state
    outcome = evaluate(state, [event("x"), event("y")], LEGACY_CATALOGUE)
    assert outcome.awards == [] and outcome.progress == []
    assert not outcome.changed
    assert outcome.state.badges["calculator-explorer"].count == 3


def test_each_badge_counts_its_own_event_type() -> None:
    events = [event("v1", "voting"), event("v2", "voting"), event("a1", "attendance")]
    outcome = evaluate(BadgeState(), events, LEGACY_CATALOGUE)
    assert counts(outcome.state) == {"active-voter": 2, "regular-attendee": 1}


def test_repeated_ids_are_counted_once_within_and_across_batches() -> None:
    first = evaluate(BadgeState(), [event("a"), event("a")], LEGACY_CATALOGUE)
    assert first.duplicates == ["a"]
    assert first.state.badges["calculator-explorer"].count == 1
    second = evaluate(first.state, [event("a")], LEGACY_CATALOGUE)
    assert second.duplicates == ["a"] and not second.changed
    assert second.state.batch_seq == first.state.batch_seq


def test_batch_sequence_advances_only_when_something_changed() -> None:
    first = evaluate(BadgeState(), [event("a")], LEGACY_CATALOGUE)
    assert first.state.batch_seq == 1
    assert evaluate(first.state, [event("a")], LEGACY_CATALOGUE).state.batch_seq == 1


def test_input_state_is_not_modified() -> None:
    state = evaluate(BadgeState(), [event("a"), event("b")], LEGACY_CATALOGUE).state
    before = state.model_copy(deep=True)
    evaluate(state, [event("c")], LEGACY_CATALOGUE)
    reevaluate(state, [count_badge(2, version=2, badge_id="calculator-explorer")], ["calculator-explorer"], T0)
    assert state == before


def test_dedup_window_keeps_only_the_most_recent_ids() -> None:
    events = [event(f"e{i}", "attendance") for i in range(DEDUP_WINDOW + 10)]
    outcome = evaluate(BadgeState(), events, LEGACY_CATALOGUE)
    assert len(outcome.state.recent_event_ids) == DEDUP_WINDOW
    assert outcome.state.recent_event_ids[-1] == f"e{DEDUP_WINDOW + 9}"


def test_event_data_match_narrows_what_counts() -> None:
    catalogue = (
        BadgeDefinition(
            badge_id="budget-planner",
            name="Budget planner",
            description="Use the budget calculator twice.",
            rule=CountRule(event_type="tool_usage", target=2, event_data_match={"tool": "budget"}),
        ),
    )
    outcome = evaluate(BadgeState(), [event("a", tool="budget"), event("b", tool="loan"), event("c")], catalogue)
    assert counts(outcome.state) == {"budget-planner": 1}
    outcome = evaluate(outcome.state, [event("d", tool="budget")], catalogue)
    assert [a.badge_id for a in outcome.awards] == ["budget-planner"]


def test_legacy_catalogue_has_the_first_three_badges_at_version_1() -> None:
    rules = {b.badge_id: (b.rule, b.version) for b in LEGACY_CATALOGUE}
    assert rules == {
        "calculator-explorer": (CountRule(event_type="tool_usage", target=3), 1),
        "regular-attendee": (CountRule(event_type="attendance", target=3), 1),
        "active-voter": (CountRule(event_type="voting", target=5), 1),
    }


def test_inactive_and_financial_badges_are_not_evaluated() -> None:
    catalogue = [
        count_badge(1, active=False),
        BadgeDefinition(
            badge_id="saver",
            name="Saver",
            rule=MilestoneRule(target_minor=100),
            config=AdvancedBadgeConfig(open_banking=OpenBankingConfig()),
        ),
    ]
    outcome = evaluate(BadgeState(), [event("a")], catalogue)
    assert not outcome.changed and outcome.state.badges == {}


def test_awards_carry_the_definitions_reward_and_version() -> None:
    badge = count_badge(1, version=4, reward=MoneyReward(amount_minor=250))
    (award,) = evaluate(BadgeState(), [event("a")], [badge]).awards
    assert (award.version, award.reward) == (4, MoneyReward(amount_minor=250))
    wire = award.model_dump(mode="json", by_alias=True)
    assert wire["badgeId"] == "counter" and wire["awardedAt"].startswith("2026-11-01")
    assert wire["reward"] == {"kind": "money", "amountMinor": 250, "currency": "GBP"}
    assert Award.model_validate(wire) == award


def test_awarded_at_can_be_given_for_released_events() -> None:
    later = T0 + timedelta(days=2)
    (award,) = evaluate(BadgeState(), [event("a")], [count_badge(1)], awarded_at=later).awards
    assert award.awarded_at == later


def test_old_wire_payloads_still_parse() -> None:
    progress = ProgressUpdate.model_validate({"badgeId": "x", "name": "X", "value": 1, "target": 3})
    assert (progress.kind, progress.version, progress.tier) == ("count", 1, None)
    award = Award.model_validate({"badgeId": "x", "name": "X", "instance": "1", "awardedAt": T0.isoformat()})
    assert (award.version, award.reward) == (1, None)
    old_event = BadgeEvent.model_validate({"id": "a", "type": "voting", "timestamp": T0.isoformat()})
    assert (old_event.local_date, old_event.catalogue_revision, old_event.day) == (None, 0, T0.date())


# --- the count-only state shape of earlier workflows ---------------------------------------------


def test_old_count_only_state_parses_into_rule_states() -> None:
    old = {
        "counts": {"calculator-explorer": 3, "regular-attendee": 1},
        "awarded": {"calculator-explorer": T0.isoformat()},
        "recent_event_ids": ["a", "b"],
        "batch_seq": 7,
    }
    state = BadgeState.model_validate(old)
    assert state.batch_seq == 7 and state.recent_event_ids == ["a", "b"]
    assert state.badges == {
        "calculator-explorer": RuleState(version=1, kind="count", count=3, awarded={"1": T0}),
        "regular-attendee": RuleState(version=1, kind="count", count=1),
    }
    assert state.arrivals == {} and state.held == []


def test_old_state_carries_on_counting_and_never_re_awards() -> None:
    state = BadgeState.model_validate(
        {"counts": {"calculator-explorer": 3, "active-voter": 4}, "awarded": {"calculator-explorer": T0.isoformat()}}
    )
    outcome = evaluate(state, [event("t"), event("v", "voting", minutes=1)], LEGACY_CATALOGUE)
    assert [(a.badge_id, a.instance) for a in outcome.awards] == [("active-voter", "1")]
    assert [p.badge_id for p in outcome.progress] == ["active-voter"]


def test_new_state_round_trips_through_json() -> None:
    state = evaluate(BadgeState(), [event("a"), event("b", "voting")], LEGACY_CATALOGUE).state
    assert BadgeState.model_validate_json(state.model_dump_json()) == state


def test_empty_old_state_parses() -> None:
    assert BadgeState.model_validate({"counts": {}, "awarded": {}, "recent_event_ids": [], "batch_seq": 0}) == (
        BadgeState()
    )


# --- definition changes --------------------------------------------------------------------------


def test_new_version_with_a_higher_target_carries_progress_on() -> None:
    state = evaluate(BadgeState(), [event("a"), event("b")], [count_badge(5)]).state
    outcome = evaluate(state, [event("c")], [count_badge(10, version=2)])
    assert [(p.value, p.target, p.version) for p in outcome.progress] == [(3, 10, 2)]
    assert outcome.state.badges["counter"].version == 2 and outcome.awards == []


def test_new_version_with_a_lower_target_awards_on_the_next_event() -> None:
    state = evaluate(BadgeState(), [event(str(n)) for n in range(4)], [count_badge(5)]).state
    outcome = evaluate(state, [event("x", minutes=9)], [count_badge(3, version=2)])
    assert [(a.instance, a.version, a.awarded_at) for a in outcome.awards] == [("1", 2, T0 + timedelta(minutes=9))]


def test_awards_survive_a_raised_target_and_are_never_given_again() -> None:
    state = evaluate(BadgeState(), [event(str(n)) for n in range(3)], [count_badge(3)]).state
    assert "1" in state.badges["counter"].awarded
    outcome = evaluate(state, [event(f"more{n}") for n in range(10)], [count_badge(5, version=2)])
    assert outcome.awards == [] and outcome.progress == []
    assert outcome.state.badges["counter"].awarded == state.badges["counter"].awarded


def test_a_kind_change_resets_progress_but_keeps_awards() -> None:
    state = evaluate(BadgeState(), [event(str(n)) for n in range(3)], [count_badge(3)]).state
    tiers = BadgeDefinition(
        badge_id="counter",
        version=2,
        name="Counter",
        rule=TiersRule(event_type="tool_usage", tiers=[Tier(name="bronze", target=2), Tier(name="silver", target=4)]),
    )
    outcome = evaluate(state, [event("x")], [tiers])
    progress = outcome.state.badges["counter"]
    assert (progress.kind, progress.version, progress.count) == ("tiers", 2, 1)
    assert progress.awarded == {"1": state.badges["counter"].awarded["1"]}
    assert [(p.value, p.target, p.kind) for p in outcome.progress] == [(1, 2, "tiers")]
    again = evaluate(outcome.state, [event("y")], [tiers])
    assert [a.instance for a in again.awards] == ["bronze"]


def test_a_kind_change_to_a_kind_already_awarded_counts_no_more() -> None:
    state = evaluate(BadgeState(), [event(str(n)) for n in range(3)], [count_badge(3)]).state
    streak = BadgeDefinition(
        badge_id="counter", version=2, name="Counter", rule=StreakRule(event_type="tool_usage", length=2)
    )
    outcome = evaluate(state, [event("x"), event("y", minutes=60 * 24)], [streak])
    assert outcome.awards == [] and outcome.progress == []


# --- re-evaluation after a definition changes ------------------------------------------------------


def test_reevaluate_awards_what_a_lowered_target_already_grants_once() -> None:
    state = evaluate(BadgeState(), [event(str(n)) for n in range(4)], [count_badge(5)]).state
    now = T0 + timedelta(days=3)
    lowered = [count_badge(3, version=2, reward=PointsReward(points=10))]
    first = reevaluate(state, lowered, ["counter"], now)
    assert [(a.badge_id, a.instance, a.awarded_at, a.version, a.reward) for a in first.awards] == [
        ("counter", "1", now, 2, PointsReward(points=10))
    ]
    assert [(p.value, p.target, p.version) for p in first.progress] == [(4, 3, 2)]
    assert first.state.batch_seq == state.batch_seq + 1
    second = reevaluate(first.state, lowered, ["counter"], now + timedelta(hours=1))
    assert not second.changed and second.state == first.state


def test_reevaluate_reports_a_raised_target_without_awarding() -> None:
    state = evaluate(BadgeState(), [event(str(n)) for n in range(4)], [count_badge(5)]).state
    outcome = reevaluate(state, [count_badge(8, version=2)], ["counter"], T0)
    assert outcome.awards == []
    assert [(p.value, p.target, p.version) for p in outcome.progress] == [(4, 8, 2)]


def test_reevaluate_changes_nothing_for_an_unchanged_definition_or_unknown_badges() -> None:
    state = evaluate(BadgeState(), [event(str(n)) for n in range(2)], [count_badge(5)]).state
    outcome = reevaluate(state, [count_badge(5)], ["counter", "no-such-badge", "calculator-explorer"], T0)
    assert not outcome.changed and outcome.state == state


def test_reevaluate_after_a_kind_change_reports_the_reset_and_keeps_awards() -> None:
    state = evaluate(BadgeState(), [event(str(n)) for n in range(3)], [count_badge(3)]).state
    streak = BadgeDefinition(
        badge_id="counter", version=2, name="Counter", rule=StreakRule(event_type="tool_usage", length=3)
    )
    outcome = reevaluate(state, [streak], ["counter"], T0)
    assert outcome.awards == []
    assert [(p.value, p.target, p.kind) for p in outcome.progress] == [(0, 3, "streak")]
    assert outcome.state.badges["counter"].awarded == state.badges["counter"].awarded


def test_reevaluate_sees_a_change_that_an_awarded_badge_ignored_in_evaluate() -> None:
    tiers_v1 = BadgeDefinition(
        badge_id="voice",
        name="Voice",
        rule=TiersRule(event_type="tool_usage", tiers=[Tier(name="bronze", target=1), Tier(name="silver", target=2)]),
    )
    state = evaluate(BadgeState(), [event("a"), event("b"), event("c")], [tiers_v1]).state
    tiers_v2 = tiers_v1.model_copy(
        update={
            "version": 2,
            "rule": TiersRule(
                event_type="tool_usage",
                tiers=[Tier(name="bronze", target=1), Tier(name="silver", target=2), Tier(name="gold", target=3)],
            ),
        }
    )
    # Fully awarded under v1 (bronze, silver): the counted-after-award events were not counted.
    assert state.badges["voice"].count == 2
    outcome = reevaluate(state, [tiers_v2], ["voice"], T0)
    assert outcome.awards == [] and [(p.value, p.target, p.tier) for p in outcome.progress] == [(2, 3, "silver")]
    later = evaluate(outcome.state, [event("d")], [tiers_v2])
    assert [a.instance for a in later.awards] == ["gold"]
