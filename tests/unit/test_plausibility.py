"""Pure tests of the anti-gaming screen: bursts held for review, measured on arrival times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from badges.domain.catalogue import LEGACY_CATALOGUE
from badges.domain.events import BadgeEvent
from badges.domain.plausibility import (
    ARRIVAL_LIMITS,
    BACKDATED_LIMITS,
    DEFAULT_LIMITS,
    HeldBatch,
    PlausibilityLimit,
    Screening,
    screen,
)
from badges.domain.rules import BadgeState, evaluate

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def check_in(n: int, type_: str = "attendance") -> BadgeEvent:
    # The client's timestamps claim an hour apart: the screen must not believe them.
    return BadgeEvent(id=f"{type_}-{n}", type=type_, timestamp=NOW - timedelta(hours=n))


def review_ids() -> tuple[list[str], Callable[[str], str]]:
    made: list[str] = []

    def make(event_type: str) -> str:
        made.append(f"review-{len(made)}-{event_type}")
        return made[-1]

    return made, make


def test_defaults() -> None:
    assert {(limit.event_type, limit.max_events, limit.per_seconds) for limit in ARRIVAL_LIMITS} == {
        ("attendance", 10, 60),
        ("voting", 30, 60),
        ("tool_usage", 30, 60),
    }
    assert {(limit.event_type, limit.max_events, limit.backdated_seconds) for limit in BACKDATED_LIMITS} == {
        ("attendance", 2, 3600),
        ("voting", 3, 3600),
        ("tool_usage", 3, 3600),
    }
    assert DEFAULT_LIMITS == ARRIVAL_LIMITS + BACKDATED_LIMITS


def test_a_burst_of_50_check_ins_in_one_batch_admits_the_first_10() -> None:
    made, make = review_ids()
    events = [check_in(n) for n in range(50)]
    screening = screen({}, events, NOW, ARRIVAL_LIMITS, make)
    assert [e.id for e in screening.admitted] == [e.id for e in events[:10]]
    (held,) = screening.held
    assert held.review_id == made[0] == "review-0-attendance"
    assert held.event_type == "attendance"
    assert [e.id for e in held.events] == [e.id for e in events[10:]]
    assert held.reason == "50 attendance events within 60 s; limit 10"
    assert screening.arrivals == {"attendance": [NOW] * 10}


def test_a_burst_arriving_one_a_second_is_held_after_the_tenth() -> None:
    arrivals: dict[str, list[datetime]] = {}
    admitted: list[str] = []
    held: list[HeldBatch] = []
    for n in range(50):
        screening = screen(arrivals, [check_in(n)], NOW + timedelta(seconds=n), ARRIVAL_LIMITS, str)
        arrivals = screening.arrivals
        admitted.extend(e.id for e in screening.admitted)
        held.extend(screening.held)
    # Seconds 0-9 admitted; from 60 s on the first arrivals leave the window, but 50 arrive in 50 s.
    assert admitted == [f"attendance-{n}" for n in range(10)]
    assert len(held) == 40
    assert held[0].reason == "11 attendance events within 60 s; limit 10"
    assert len(arrivals["attendance"]) == 10


def test_room_returns_once_arrivals_leave_the_window() -> None:
    first = screen({}, [check_in(n) for n in range(10)], NOW, ARRIVAL_LIMITS, str)
    just_inside = screen(first.arrivals, [check_in(10)], NOW + timedelta(seconds=59), ARRIVAL_LIMITS, str)
    assert just_inside.admitted == [] and len(just_inside.held) == 1
    after = screen(first.arrivals, [check_in(10)], NOW + timedelta(seconds=60), ARRIVAL_LIMITS, str)
    assert [e.id for e in after.admitted] == ["attendance-10"]
    assert after.arrivals == {"attendance": [NOW + timedelta(seconds=60)]}


def test_types_are_limited_separately_and_unlimited_types_pass() -> None:
    limits = (PlausibilityLimit(event_type="attendance", max_events=1, per_seconds=60),)
    events = [check_in(0), check_in(1), check_in(0, "voting"), check_in(1, "voting"), check_in(2)]
    screening = screen({}, events, NOW, limits, lambda t: f"held-{t}")
    assert [e.id for e in screening.admitted] == ["attendance-0", "voting-0", "voting-1"]
    assert [(h.review_id, [e.id for e in h.events]) for h in screening.held] == [
        ("held-attendance", ["attendance-1", "attendance-2"])
    ]
    assert set(screening.arrivals) == {"attendance"}


def test_one_held_batch_per_type_per_call() -> None:
    limits = (
        PlausibilityLimit(event_type="attendance", max_events=1, per_seconds=60),
        PlausibilityLimit(event_type="voting", max_events=1, per_seconds=60),
    )
    events = [check_in(n, t) for n in range(3) for t in ("voting", "attendance")]
    made, make = review_ids()
    screening = screen({}, events, NOW, limits, make)
    assert [(h.event_type, len(h.events)) for h in screening.held] == [("voting", 2), ("attendance", 2)]
    assert made == ["review-0-voting", "review-1-attendance"]


def test_re_deliveries_use_no_room_and_follow_their_first_copy() -> None:
    limits = (PlausibilityLimit(event_type="attendance", max_events=2, per_seconds=60),)
    events = [check_in(0), check_in(0), check_in(1), check_in(2), check_in(2), check_in(9)]
    screening = screen({}, events, NOW, limits, str, known_ids={"attendance-9"})
    assert [e.id for e in screening.admitted] == ["attendance-0", "attendance-0", "attendance-1", "attendance-9"]
    assert [[e.id for e in h.events] for h in screening.held] == [["attendance-2"]]
    assert screening.arrivals == {"attendance": [NOW, NOW]}


def test_inputs_are_not_modified_and_old_arrivals_are_dropped() -> None:
    arrivals = {"attendance": [NOW - timedelta(minutes=5), NOW - timedelta(seconds=30)], "voting": [NOW]}
    before = {k: list(v) for k, v in arrivals.items()}
    screening = screen(arrivals, [check_in(0)], NOW, ARRIVAL_LIMITS, str)
    assert arrivals == before
    assert screening.arrivals == {"attendance": [NOW - timedelta(seconds=30), NOW], "voting": [NOW]}


def test_released_events_count_without_touching_arrivals() -> None:
    # The workflow's path: screen, keep the held batch, later evaluate it directly on approval.
    screening: Screening = screen({}, [check_in(n) for n in range(12)], NOW, ARRIVAL_LIMITS, str)
    state = BadgeState(arrivals=screening.arrivals, held=screening.held)
    first = evaluate(state, screening.admitted, LEGACY_CATALOGUE)
    assert first.state.badges["regular-attendee"].count == 3  # awarded at 3, then stops
    (held,) = first.state.held
    released = evaluate(first.state.model_copy(update={"held": []}), held.events, LEGACY_CATALOGUE)
    assert released.state.arrivals == screening.arrivals
    assert released.state.held == []


def test_a_backlog_processed_at_once_is_screened_by_when_the_api_received_it() -> None:
    # 15 check-ins received 40 s apart (plausible), processed together after a worker outage.
    events = [check_in(n).model_copy(update={"received_at": NOW - timedelta(seconds=40 * (15 - n))}) for n in range(15)]
    screening = screen({}, events, NOW, ARRIVAL_LIMITS, str)
    assert len(screening.admitted) == 15 and screening.held == []
    # The same 15 received within one second are a burst.
    burst = [check_in(n).model_copy(update={"received_at": NOW - timedelta(milliseconds=n)}) for n in range(15)]
    assert sum(len(h.events) for h in screen({}, burst, NOW, ARRIVAL_LIMITS, str).held) == 5


def test_a_received_time_after_the_workflows_clock_counts_as_now() -> None:
    late = [check_in(n).model_copy(update={"received_at": NOW + timedelta(minutes=5)}) for n in range(3)]
    assert screen({}, late, NOW, ARRIVAL_LIMITS, str).arrivals == {"attendance": [NOW] * 3}


def stamped(n: int, days_ago: int, type_: str = "attendance") -> BadgeEvent:
    """An event received at NOW + n seconds that claims to have happened `days_ago` days before."""
    received = NOW + timedelta(seconds=n)
    return BadgeEvent(
        id=f"{type_}-{n}", type=type_, timestamp=received - timedelta(days=days_ago), received_at=received
    )


def test_a_week_of_back_dated_check_ins_arriving_at_once_is_held() -> None:
    # Seven "daily" check-ins, one per day over the last week, all sent within a minute: the
    # arrival limit (10 a minute) lets them through, the back-dated one does not.
    week = [stamped(n, days_ago=7 - n) for n in range(7)]
    screening = screen({}, week, NOW + timedelta(minutes=1), DEFAULT_LIMITS, str)
    assert [e.id for e in screening.admitted] == [e.id for e in week[:2]]
    (held,) = screening.held
    assert [e.id for e in held.events] == [e.id for e in week[2:]]
    assert held.reason == "7 attendance events stamped over 1 h before arrival, within 86400 s; limit 2"
    assert len(screening.arrivals["attendance/backdated"]) == 2 and len(screening.arrivals["attendance"]) == 2


def test_back_dated_events_sent_one_at_a_time_are_held_all_the_same() -> None:
    arrivals: dict[str, list[datetime]] = {}
    admitted = []
    for n in range(7):
        screening = screen(
            arrivals, [stamped(n * 300, days_ago=7 - n)], NOW + timedelta(seconds=n * 300), DEFAULT_LIMITS, str
        )
        arrivals = screening.arrivals
        admitted.extend(e.id for e in screening.admitted)
    assert len(admitted) == 2


def test_events_stamped_as_they_happen_and_a_scanners_back_fill_pass() -> None:
    # Fifteen check-ins over the day, each stamped a minute before it arrived, and then an offline
    # scanner's one back-filled check-in from yesterday.
    day = [
        BadgeEvent(
            id=f"live-{n}",
            type="attendance",
            timestamp=NOW + timedelta(hours=n),
            received_at=NOW + timedelta(hours=n, minutes=1),
        )
        for n in range(15)
    ]
    late = stamped(15 * 3600, days_ago=1)
    screening = screen({}, [*day, late], NOW + timedelta(hours=16), DEFAULT_LIMITS, str)
    assert screening.held == [] and len(screening.admitted) == 16
    assert screening.arrivals["attendance/backdated"] == [late.received_at]


def test_room_for_back_dated_events_returns_after_a_day() -> None:
    first = screen({}, [stamped(0, 3), stamped(1, 2)], NOW + timedelta(seconds=1), DEFAULT_LIMITS, str)
    assert screen(first.arrivals, [stamped(2, 1)], NOW + timedelta(hours=23), DEFAULT_LIMITS, str).held
    next_day = NOW + timedelta(days=1, seconds=2)
    later = BadgeEvent(id="x", type="attendance", timestamp=next_day - timedelta(days=1), received_at=next_day)
    assert not screen(first.arrivals, [later], next_day, DEFAULT_LIMITS, str).held


def test_the_record_of_arrivals_without_limits_for_it_is_dropped() -> None:
    old = {"attendance/backdated": [NOW]}
    assert screen(old, [], NOW, ARRIVAL_LIMITS, str).arrivals == {}
