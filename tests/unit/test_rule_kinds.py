"""Pure tests of each real-time rule kind: streaks (days, ISO weeks, time zones), distinct values,
sliding windows and tiers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from badges.domain.definitions import BadgeDefinition, DistinctRule, StreakRule, Tier, TiersRule, WindowRule
from badges.domain.events import BadgeEvent
from badges.domain.rules import BadgeState, Evaluation, evaluate

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def local_event(event_id: str, at: datetime, type_: str = "attendance", **data: object) -> BadgeEvent:
    """An event as the API builds it: a UTC timestamp and the member's local calendar date."""
    assert at.tzinfo is not None
    return BadgeEvent(
        id=event_id,
        type=type_,
        event_data=dict(data),
        timestamp=at.astimezone(UTC),
        local_date=at.date(),
    )


def on_day(day: date, event_id: str | None = None, hour: int = 12) -> BadgeEvent:
    return local_event(event_id or f"e-{day}-{hour}", datetime(day.year, day.month, day.day, hour, tzinfo=UTC))


def run(events: list[BadgeEvent], badge: BadgeDefinition, state: BadgeState | None = None) -> Evaluation:
    return evaluate(state or BadgeState(), events, [badge])


def one_by_one(events: list[BadgeEvent], badge: BadgeDefinition) -> tuple[BadgeState, list[Evaluation]]:
    state, outcomes = BadgeState(), []
    for item in events:
        outcome = evaluate(state, [item], [badge])
        outcomes.append(outcome)
        state = outcome.state
    return state, outcomes


def days(start: date, count: int) -> list[date]:
    return [start + timedelta(days=n) for n in range(count)]


def streak(length: int, unit: str = "day") -> BadgeDefinition:
    return BadgeDefinition(
        badge_id="streaker",
        name="Streaker",
        rule=StreakRule(event_type="attendance", length=length, unit=unit),
    )


# --- streaks ---------------------------------------------------------------------------------------


def test_consecutive_days_build_a_streak_awarded_on_the_deciding_day() -> None:
    events = [on_day(day) for day in days(date(2026, 5, 4), 3)]
    outcome = run(events, streak(3))
    assert [(p.value, p.target, p.kind) for p in outcome.progress] == [(3, 3, "streak")]
    assert [(a.instance, a.awarded_at) for a in outcome.awards] == [("1", events[-1].timestamp)]


def test_two_events_on_one_day_count_once() -> None:
    day = date(2026, 5, 4)
    outcome = run([on_day(day, hour=9), on_day(day, hour=18), on_day(day + timedelta(days=1))], streak(3))
    assert outcome.state.badges["streaker"].streak.current == 2
    assert outcome.awards == []


def test_a_single_missing_day_breaks_the_streak() -> None:
    start = date(2026, 5, 4)
    events = [on_day(start), on_day(start + timedelta(days=1)), on_day(start + timedelta(days=3))]
    state, outcomes = one_by_one(events, streak(3))
    assert [o.progress[0].value for o in outcomes] == [1, 2, 1]
    assert (state.badges["streaker"].streak.current, state.badges["streaker"].streak.best) == (1, 2)
    assert all(o.awards == [] for o in outcomes)


@pytest.mark.parametrize(
    "start",
    [date(2026, 1, 30), date(2026, 2, 27), date(2028, 2, 27), date(2026, 12, 30)],
    ids=["january-end", "february-end", "leap-february-end", "year-end"],
)
def test_streaks_run_across_month_and_year_ends(start: date) -> None:
    outcome = run([on_day(day) for day in days(start, 4)], streak(4))
    assert [a.instance for a in outcome.awards] == ["1"]


def test_london_dst_day_streak_follows_local_dates_not_utc() -> None:
    # 2026-03-29: clocks go forward at 01:00 GMT. Late-evening check-ins after the change fall on
    # the next local day while their UTC date is still the day before.
    check_ins = [
        datetime(2026, 3, 28, 23, 30, tzinfo=LONDON),  # GMT: 23:30 UTC on the 28th
        datetime(2026, 3, 29, 23, 30, tzinfo=LONDON),  # BST: 22:30 UTC on the 29th
        datetime(2026, 3, 30, 0, 30, tzinfo=LONDON),  # BST: 23:30 UTC on the 29th
    ]
    events = [local_event(f"l{n}", at) for n, at in enumerate(check_ins)]
    assert [e.timestamp.date() for e in events] == [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 29)]
    outcome = run(events, streak(3))
    assert [a.instance for a in outcome.awards] == ["1"]
    utc_only = [e.model_copy(update={"local_date": None}) for e in events]
    assert run(utc_only, streak(3)).awards == []


def test_new_york_streak_across_both_dst_changes() -> None:
    # Evening check-ins are the next day in UTC; 2026-03-08 has 23 hours, 2026-11-01 has 25.
    for first in (date(2026, 3, 6), date(2026, 10, 30)):
        evenings = [datetime(d.year, d.month, d.day, 22, 45, tzinfo=NEW_YORK) for d in days(first, 4)]
        events = [local_event(f"ny{n}", at) for n, at in enumerate(evenings)]
        assert [e.day for e in events] == days(first, 4)
        assert all(e.timestamp.date() == e.day + timedelta(days=1) for e in events)
        outcome = run(events, streak(4))
        assert [a.instance for a in outcome.awards] == ["1"], first


def test_a_late_event_fills_a_gap_without_double_counting() -> None:
    start = date(2026, 6, 1)
    day1, day2, day3, day4 = days(start, 4)
    state, outcomes = one_by_one([on_day(day1), on_day(day3), on_day(day2, "late")], streak(4))
    assert [o.progress[0].value for o in outcomes] == [1, 1, 3]
    # The same late day again (a different event) changes nothing.
    again = run([on_day(day2, "late-again", hour=20)], streak(4), state)
    assert again.state.badges["streaker"].streak.current == 3
    final = run([on_day(day4)], streak(4), again.state)
    assert [a.instance for a in final.awards] == ["1"]


def test_a_late_event_never_breaks_or_extends_a_streak_beyond_the_truth() -> None:
    start = date(2026, 6, 1)
    state, _ = one_by_one([on_day(day) for day in days(start, 3)], streak(5))
    # A day long before: nothing changes.
    older = run([on_day(start - timedelta(days=30))], streak(5), state)
    assert older.state.badges["streaker"].streak.current == 3
    assert older.state.badges["streaker"].streak.last == start + timedelta(days=2)
    # The day just before the run extends it (it really was 4 days in a row).
    before = run([on_day(start - timedelta(days=1))], streak(5), older.state)
    assert before.state.badges["streaker"].streak.current == 4


def test_streak_state_stays_bounded_by_the_length() -> None:
    state, _ = one_by_one([on_day(day) for day in days(date(2026, 1, 1), 40) if day.day % 3], streak(30))
    assert len(state.badges["streaker"].streak.recent) <= 30


def test_iso_week_streak_across_a_year_boundary() -> None:
    # 2026-12-28 is the Monday of 2026-W53; 2027-01-04 the Monday of 2027-W01.
    events = [
        on_day(date(2026, 12, 23)),  # Wednesday of W52
        on_day(date(2026, 12, 28)),  # Monday of W53
        on_day(date(2027, 1, 3)),  # Sunday of W53: the same week, counted once
        on_day(date(2027, 1, 4)),  # Monday of 2027-W01
    ]
    state, outcomes = one_by_one(events, streak(3, unit="week"))
    assert [o.progress[0].value for o in outcomes] == [1, 2, 2, 3]
    assert state.badges["streaker"].streak.last == date(2027, 1, 4)
    assert [a.instance for a in outcomes[-1].awards] == ["1"]


def test_a_missed_iso_week_breaks_a_week_streak() -> None:
    events = [on_day(date(2026, 12, 28)), on_day(date(2027, 1, 11))]
    state, _ = one_by_one(events, streak(2, unit="week"))
    assert state.badges["streaker"].streak.current == 1


def test_a_streak_awarded_once_stops_counting() -> None:
    state, _ = one_by_one([on_day(day) for day in days(date(2026, 5, 1), 2)], streak(2))
    later = run([on_day(date(2026, 5, 3)), on_day(date(2026, 5, 4))], streak(2), state)
    assert later.awards == [] and later.progress == []


# --- distinct values -------------------------------------------------------------------------------


def collector(target: int = 3) -> BadgeDefinition:
    return BadgeDefinition(
        badge_id="collector",
        name="Collector",
        rule=DistinctRule(event_type="tool_usage", field="calculatorId", target=target),
    )


def tool(event_id: str, **data: object) -> BadgeEvent:
    return local_event(event_id, datetime(2026, 5, 1, 12, tzinfo=UTC), "tool_usage", **data)


def test_distinct_counts_each_value_once_and_ignores_events_without_the_field() -> None:
    events = [tool("1", calculatorId="loan"), tool("2", calculatorId="loan"), tool("3"), tool("4", calculatorId=7)]
    outcome = run(events, collector())
    assert [(p.value, p.target, p.kind) for p in outcome.progress] == [(2, 3, "distinct")]
    assert outcome.state.badges["collector"].distinct == ["loan", "7"]
    assert outcome.awards == []


def test_distinct_values_compare_as_text_and_award_at_the_target() -> None:
    events = [
        tool("1", calculatorId=7),
        tool("2", calculatorId="7"),
        tool("3", calculatorId="a"),
        tool("4", calculatorId="b"),
    ]
    outcome = run(events, collector())
    assert [(a.instance, a.awarded_at) for a in outcome.awards] == [("1", events[-1].timestamp)]


def test_events_without_the_field_report_no_progress() -> None:
    assert not run([tool("1", other="x")], collector()).changed


def test_distinct_state_never_holds_more_than_the_target() -> None:
    events = [tool(str(n), calculatorId=f"c{n}") for n in range(10)]
    outcome = run(events, collector(target=4))
    assert len(outcome.state.badges["collector"].distinct) == 4


# --- sliding windows -------------------------------------------------------------------------------


def windowed(target: int = 3, within_days: int = 2) -> BadgeDefinition:
    return BadgeDefinition(
        badge_id="busy",
        name="Busy",
        rule=WindowRule(event_type="attendance", target=target, within_days=within_days),
    )


T0 = datetime(2026, 7, 1, 10, tzinfo=UTC)


def at(event_id: str, hours: float) -> BadgeEvent:
    return local_event(event_id, T0 + timedelta(hours=hours))


def test_window_awarded_when_target_events_fall_within_the_days() -> None:
    outcome = run([at("a", 0), at("b", 20), at("c", 47)], windowed())
    assert [(a.instance, a.awarded_at) for a in outcome.awards] == [("1", T0 + timedelta(hours=47))]


def test_window_boundary_is_inclusive() -> None:
    assert [a.instance for a in run([at("a", 0), at("b", 1), at("c", 48)], windowed()).awards] == ["1"]
    too_late = run([at("a", 0), at("b", 1), at("c", 48 + 1 / 3600)], windowed())
    assert too_late.awards == []
    assert [(p.value, p.target) for p in too_late.progress] == [(2, 3)]


def test_window_value_is_the_most_events_in_the_window_ending_at_the_latest() -> None:
    _, outcomes = one_by_one([at("a", 0), at("b", 10), at("c", 100)], windowed())
    assert [o.progress[0].value for o in outcomes] == [1, 2, 1]
    assert outcomes[-1].awards == []


def test_window_with_out_of_order_events() -> None:
    # Arriving at 100 h, 0 h, 30 h: no three within 48 h. A late 20 h makes 0, 20, 30.
    state, outcomes = one_by_one([at("c", 100), at("a", 0), at("b", 30)], windowed())
    assert all(o.awards == [] for o in outcomes)
    late = run([at("d", 20)], windowed(), state)
    assert [(a.instance, a.awarded_at) for a in late.awards] == [("1", T0 + timedelta(hours=20))]
    assert late.state.badges["busy"].window == [T0 + timedelta(hours=h) for h in (0, 20, 30)]


def test_a_late_event_completes_a_window_with_newer_events() -> None:
    state, _ = one_by_one([at("a", 0), at("b", 60), at("c", 100)], windowed())
    late = run([at("d", 80)], windowed(), state)
    assert [a.instance for a in late.awards] == ["1"]
    assert [(p.value, p.target) for p in late.progress] == [(3, 3)]


def test_a_late_event_older_than_the_kept_ones_is_not_kept() -> None:
    state, _ = one_by_one([at("a", 100), at("b", 200), at("c", 300)], windowed())
    late = run([at("old", 0)], windowed(), state)
    assert late.state.badges["busy"].window == [T0 + timedelta(hours=h) for h in (100, 200, 300)]
    assert late.awards == []


def test_window_state_keeps_at_most_target_timestamps() -> None:
    state, _ = one_by_one([at(str(n), 100 * n) for n in range(10)], windowed(target=4))
    assert len(state.badges["busy"].window) == 4


# --- tiers -----------------------------------------------------------------------------------------


def tiered() -> BadgeDefinition:
    return BadgeDefinition(
        badge_id="voice",
        name="Voice",
        rule=TiersRule(
            event_type="voting",
            tiers=[Tier(name="bronze", target=2), Tier(name="silver", target=4), Tier(name="gold", target=6)],
        ),
    )


def vote(event_id: str) -> BadgeEvent:
    return local_event(event_id, T0 + timedelta(minutes=int(event_id)), "voting")


def test_a_batch_jumping_two_tiers_awards_both() -> None:
    outcome = run([vote(str(n)) for n in range(5)], tiered())
    assert [(a.instance, a.awarded_at) for a in outcome.awards] == [
        ("bronze", T0 + timedelta(minutes=1)),
        ("silver", T0 + timedelta(minutes=3)),
    ]
    assert [(p.value, p.target, p.tier, p.kind) for p in outcome.progress] == [(5, 6, "silver", "tiers")]


def test_tier_progress_before_the_first_and_after_the_last() -> None:
    first = run([vote("0")], tiered())
    assert [(p.value, p.target, p.tier) for p in first.progress] == [(1, 2, None)]
    everything = run([vote(str(n)) for n in range(1, 6)], tiered(), first.state)
    assert [a.instance for a in everything.awards] == ["bronze", "silver", "gold"]
    assert [(p.value, p.target, p.tier) for p in everything.progress] == [(6, 6, "gold")]
    done = run([vote("7")], tiered(), everything.state)
    assert not done.changed


def test_each_tier_is_awarded_once() -> None:
    state, outcomes = one_by_one([vote(str(n)) for n in range(6)], tiered())
    instances = [a.instance for o in outcomes for a in o.awards]
    assert instances == ["bronze", "silver", "gold"]
    assert set(state.badges["voice"].awarded) == {"bronze", "silver", "gold"}
