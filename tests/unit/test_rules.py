"""Pure tests of the badge rules: no servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from badges.domain.catalogue import DEFAULT_CATALOGUE, BadgeDefinition, CountRule
from badges.domain.events import BadgeEvent
from badges.domain.rules import DEDUP_WINDOW, BadgeState, evaluate

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def event(event_id: str, type_: str = "tool_usage", minutes: int = 0, **data: object) -> BadgeEvent:
    return BadgeEvent(id=event_id, type=type_, event_data=dict(data), timestamp=T0 + timedelta(minutes=minutes))  # type: ignore[arg-type]


def test_progress_counts_matching_events_and_reports_value_after_batch() -> None:
    outcome = evaluate(BadgeState(), [event("a"), event("b")], DEFAULT_CATALOGUE)
    assert outcome.state.counts == {"calculator-explorer": 2}
    assert [(p.badge_id, p.value, p.target) for p in outcome.progress] == [("calculator-explorer", 2, 3)]
    assert outcome.awards == []


def test_award_when_target_reached_with_time_of_the_deciding_event() -> None:
    state = evaluate(BadgeState(), [event("a"), event("b")], DEFAULT_CATALOGUE).state
    outcome = evaluate(state, [event("c", minutes=5)], DEFAULT_CATALOGUE)
    assert [(a.badge_id, a.instance, a.awarded_at) for a in outcome.awards] == [
        ("calculator-explorer", "1", T0 + timedelta(minutes=5))
    ]
    assert "calculator-explorer" in outcome.state.awarded


def test_award_is_given_once_and_later_events_change_nothing() -> None:
    state = evaluate(BadgeState(), [event(str(i)) for i in range(3)], DEFAULT_CATALOGUE).state
    outcome = evaluate(state, [event("x"), event("y")], DEFAULT_CATALOGUE)
    assert outcome.awards == [] and outcome.progress == []
    assert not outcome.changed
    assert outcome.state.counts["calculator-explorer"] == 3


def test_each_badge_counts_its_own_event_type() -> None:
    events = [event("v1", "voting"), event("v2", "voting"), event("a1", "attendance")]
    outcome = evaluate(BadgeState(), events, DEFAULT_CATALOGUE)
    assert outcome.state.counts == {"active-voter": 2, "regular-attendee": 1}


def test_repeated_ids_are_counted_once_within_and_across_batches() -> None:
    first = evaluate(BadgeState(), [event("a"), event("a")], DEFAULT_CATALOGUE)
    assert first.duplicates == ["a"]
    assert first.state.counts["calculator-explorer"] == 1
    second = evaluate(first.state, [event("a")], DEFAULT_CATALOGUE)
    assert second.duplicates == ["a"] and not second.changed
    assert second.state.batch_seq == first.state.batch_seq


def test_batch_sequence_advances_only_when_something_changed() -> None:
    first = evaluate(BadgeState(), [event("a")], DEFAULT_CATALOGUE)
    assert first.state.batch_seq == 1
    assert evaluate(first.state, [event("a")], DEFAULT_CATALOGUE).state.batch_seq == 1


def test_input_state_is_not_modified() -> None:
    state = BadgeState()
    evaluate(state, [event("a")], DEFAULT_CATALOGUE)
    assert state == BadgeState()


def test_dedup_window_keeps_only_the_most_recent_ids() -> None:
    events = [event(f"e{i}", "attendance") for i in range(DEDUP_WINDOW + 10)]
    outcome = evaluate(BadgeState(), events, DEFAULT_CATALOGUE)
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
    assert outcome.state.counts == {"budget-planner": 1}
    outcome = evaluate(outcome.state, [event("d", tool="budget")], catalogue)
    assert [a.badge_id for a in outcome.awards] == ["budget-planner"]


def test_default_catalogue_has_the_first_three_badges() -> None:
    rules = {b.badge_id: (b.rule.event_type, b.rule.target) for b in DEFAULT_CATALOGUE}
    assert rules == {
        "calculator-explorer": ("tool_usage", 3),
        "regular-attendee": ("attendance", 3),
        "active-voter": ("voting", 5),
    }
