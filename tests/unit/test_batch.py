"""Pure tests of what one batch of a member's work decides (`domain/batch.py`): held bursts,
reviewers' decisions, the de-duplication window and re-evaluations, without a workflow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from badges.domain.batch import (
    REVIEW_BOUNDS,
    BatchOutcome,
    ReviewBounds,
    Work,
    apply_decisions,
    decide_batch,
    event_size,
    join_open_reviews,
    set_aside,
)
from badges.domain.catalogue import LEGACY_CATALOGUE
from badges.domain.definitions import BadgeDefinition, CountRule
from badges.domain.events import BadgeEvent
from badges.domain.plausibility import HeldBatch, PlausibilityLimit
from badges.domain.rules import BadgeState
from badges.messages.user_badges import ReevaluationRequest, ReviewDecision

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
# One tool use a minute: the second of a batch is held.
ONE_A_MINUTE = [PlausibilityLimit(event_type="tool_usage", max_events=1, per_seconds=60)]


def use(event_id: str) -> BadgeEvent:
    return BadgeEvent(id=event_id, type="tool_usage", timestamp=NOW - timedelta(hours=1))


def review_ids() -> Callable[[str], str]:
    made: list[str] = []

    def make(event_type: str) -> str:
        made.append(f"review-{len(made)}-{event_type}")
        return made[-1]

    return make


def decide(
    state: BadgeState,
    events: list[BadgeEvent],
    decisions: list[ReviewDecision] | None = None,
    reevaluations: list[ReevaluationRequest] | None = None,
    *,
    now: datetime = NOW,
    catalogue: list[BadgeDefinition] | None = None,
    make: Callable[[str], str] | None = None,
) -> BatchOutcome[ReviewDecision]:
    return decide_batch(
        state,
        events,
        decisions or [],
        reevaluations or [],
        LEGACY_CATALOGUE if catalogue is None else catalogue,
        now,
        make or review_ids(),
        ONE_A_MINUTE,
    )


def held(review_id: str, event_type: str = "tool_usage", count: int = 1, *events: BadgeEvent) -> HeldBatch:
    return HeldBatch(review_id=review_id, event_type=event_type, reason="burst", events=list(events), count=count)


def test_a_burst_is_held_for_review_and_the_state_keeps_only_its_count() -> None:
    outcome = decide(BadgeState(), [use("a"), use("b"), use("c")])
    assert [(p.badge_id, p.value) for p in outcome.progress] == [("calculator-explorer", 1)]
    [item] = outcome.state.held
    assert (item.review_id, item.event_type, item.count, item.events) == ("review-0-tool_usage", "tool_usage", 2, [])
    assert item.reason == "3 tool_usage events within 60 s; limit 1"
    [review] = outcome.reviews
    assert (review.review_id, [e.id for e in review.events]) == ("review-0-tool_usage", ["b", "c"])
    assert outcome.to_record and outcome.resolved == []


def test_a_burst_spanning_batches_joins_the_review_item_still_open() -> None:
    first = decide(BadgeState(), [use("a"), use("b")])
    second = decide(first.state, [use("c"), use("d")], now=NOW + timedelta(seconds=1), make=lambda _: "unused")
    [item] = second.state.held
    assert (item.review_id, item.count, item.events) == ("review-0-tool_usage", 3, [])
    assert [(r.review_id, [e.id for e in r.events]) for r in second.reviews] == [("review-0-tool_usage", ["c", "d"])]


def test_an_approved_burst_counts_as_of_the_decision() -> None:
    first = decide(BadgeState(), [use("a"), use("b"), use("c")])
    later = NOW + timedelta(days=2)
    # The events come back with the decision, as stored with the review item.
    approval = ReviewDecision(
        review_id="review-0-tool_usage", approved=True, resolved_by="op", events=[use("b"), use("c")]
    )
    outcome = decide(first.state, [], [approval], now=later)
    assert outcome.state.held == []
    assert outcome.resolved == [approval]
    assert [(a.badge_id, a.awarded_at) for a in outcome.awards] == [("calculator-explorer", later)]
    assert outcome.reviews == []


def test_a_rejected_burst_never_counts_even_when_delivered_again() -> None:
    first = decide(BadgeState(), [use("a"), use("b")])
    rejection = ReviewDecision(review_id="review-0-tool_usage", approved=False, resolved_by="op", events=[use("b")])
    rejected = decide(first.state, [], [rejection], now=NOW + timedelta(minutes=5))
    assert rejected.state.held == [] and rejected.resolved == [rejection]
    assert rejected.state.recent_event_ids[-1] == "b"
    again = decide(rejected.state, [use("b")], now=NOW + timedelta(minutes=10))
    assert again.progress == [] and again.awards == [] and not again.to_record


def test_a_decision_for_nothing_held_changes_nothing() -> None:
    stray = ReviewDecision(review_id="decided-before", approved=True, resolved_by="op", events=[use("x")])
    outcome = decide(BadgeState(), [], [stray])
    assert outcome.resolved == [] and outcome.progress == [] and not outcome.to_record


def test_decisions_take_only_the_events_of_the_held_type_and_leave_other_items_open() -> None:
    vote = BadgeEvent(id="v", type="voting", timestamp=NOW)
    items = [held("r1", "tool_usage", 1, use("kept")), held("r2", "voting")]
    decision = ReviewDecision(review_id="r1", approved=True, resolved_by="op", events=[use("stored"), vote])
    decided = apply_decisions(items, [decision])
    assert [e.id for e in decided.released] == ["stored", "kept"]
    assert decided.still_held == [items[1]] and decided.resolved == [decision] and decided.rejected_ids == []


def test_join_open_reviews_adds_an_item_per_new_event_type() -> None:
    still_held = [held("r1", "tool_usage", 2)]
    new = [held("r9", "tool_usage", 0, use("a")), held("r10", "voting", 0, use("v"))]
    reviews = join_open_reviews(still_held, new)
    assert [(item.review_id, item.count) for item in still_held] == [("r1", 3), ("r10", 1)]
    assert [review.review_id for review in reviews] == ["r1", "r10"]


def test_reevaluations_recheck_each_named_badge_once() -> None:
    state = decide(BadgeState(), [use("a")], now=NOW).state
    state = decide(state, [use("b")], now=NOW + timedelta(minutes=2)).state
    easier = BadgeDefinition(
        badge_id="calculator-explorer",
        version=2,
        name="Calculator explorer",
        rule=CountRule(event_type="tool_usage", target=2),
    )
    requests = [ReevaluationRequest(badge_ids=["calculator-explorer"], catalogue_revision=1)] * 2
    outcome = decide(state, [], reevaluations=requests, now=NOW + timedelta(hours=1), catalogue=[easier])
    assert [(a.badge_id, a.version) for a in outcome.awards] == [("calculator-explorer", 2)]
    assert [(p.badge_id, p.version) for p in outcome.progress] == [("calculator-explorer", 2)]


def attend(event_id: str, note: str = "") -> BadgeEvent:
    return BadgeEvent(id=event_id, type="attendance", timestamp=NOW, event_data={"note": note} if note else {})


def yes() -> bool:
    return True


def burst(review_id: str, *events: BadgeEvent) -> HeldBatch:
    return HeldBatch(review_id=review_id, event_type="attendance", reason="burst", events=list(events))


def test_a_burst_past_an_items_event_bound_goes_on_in_new_items() -> None:
    still_held: list[HeldBatch] = []
    made = review_ids()
    bounds = ReviewBounds(max_events=3, max_bytes=1 << 20)
    first = join_open_reviews(still_held, [burst("r0", *(attend(f"a{n}") for n in range(4)))], bounds, yes, made)
    second = join_open_reviews(still_held, [burst("r9", *(attend(f"b{n}") for n in range(4)))], bounds, yes, made)
    assert [(item.review_id, item.count, item.events) for item in still_held] == [
        ("r0", 3, []),
        ("review-0-attendance", 3, []),
        ("r9", 2, []),
    ]
    # What to store: each item with the events this batch adds to it, in order. A batch opening
    # an item names it as the screen named the batch's burst (r0, r9), further ones afresh.
    assert [(r.review_id, [e.id for e in r.events]) for r in first] == [
        ("r0", ["a0", "a1", "a2"]),
        ("review-0-attendance", ["a3"]),
    ]
    assert [(r.review_id, [e.id for e in r.events]) for r in second] == [
        ("review-0-attendance", ["b0", "b1"]),
        ("r9", ["b2", "b3"]),
    ]


def test_an_item_is_also_bounded_by_the_size_of_its_events() -> None:
    still_held: list[HeldBatch] = []
    big = [attend(f"a{n}", "x" * 300) for n in range(5)]
    size = event_size(big[0])
    bounds = ReviewBounds(max_events=100, max_bytes=2 * size + 10)
    stored = join_open_reviews(still_held, [burst("r0", *big)], bounds, lambda: True, review_ids())
    assert [(item.count, item.size) for item in still_held] == [(2, 2 * size), (2, 2 * size), (1, size)]
    assert [len(item.events) for item in stored] == [2, 2, 1]
    # One event larger than the bound still has an item to go to: its own.
    huge = attend("huge", "x" * 5000)
    join_open_reviews(still_held, [burst("r1", huge)], bounds, lambda: True, review_ids())
    assert (still_held[-1].count, still_held[-1].size) == (1, event_size(huge))


def test_without_leave_to_split_an_item_grows_as_before() -> None:
    # Items held before bounds existed, in a run replaying its old history: the version gate
    # answers no, and the burst joins its open item however large it is, as it did then.
    still_held = [held("r1", "attendance", 600)]
    asked: list[bool] = []

    def may_split() -> bool:
        asked.append(True)
        return False

    stored = join_open_reviews(still_held, [burst("r9", attend("a"), attend("b"))], REVIEW_BOUNDS, may_split)
    assert [(item.review_id, item.count) for item in still_held] == [("r1", 602)]
    assert [(r.review_id, len(r.events)) for r in stored] == [("r1", 2)]
    assert asked  # asked only because the bound was passed
    asked.clear()
    join_open_reviews([], [burst("r2", attend("c"))], REVIEW_BOUNDS, may_split)
    assert asked == []  # nothing past a bound: the gate is not asked


def test_work_halves_keep_the_order_decisions_then_events_then_reevaluations() -> None:
    decision = ReviewDecision(review_id="r", approved=True, resolved_by="op")
    request = ReevaluationRequest(badge_ids=["x"], catalogue_revision=1)
    work: Work[ReviewDecision, ReevaluationRequest] = Work(
        decisions=[decision], events=[use("a"), use("b"), use("c")], reevaluations=[request]
    )
    assert work.items == 5
    first, rest = work.halves()
    assert (list(first.decisions), [e.id for e in first.events], list(first.reevaluations)) == ([decision], ["a"], [])
    assert (list(rest.decisions), [e.id for e in rest.events], list(rest.reevaluations)) == ([], ["b", "c"], [request])
    # Halving again and again ends with each item alone.
    alone: list[Work[ReviewDecision, ReevaluationRequest]] = []
    pending = [work]
    while pending:
        part = pending.pop(0)
        if part.items == 1:
            alone.append(part)
        else:
            pending[:0] = part.halves()
    assert [part.items for part in alone] == [1] * 5
    assert [(len(p.decisions), [e.id for e in p.events], len(p.reevaluations)) for p in alone] == [
        (1, [], 0), (0, ["a"], 0), (0, ["b"], 0), (0, ["c"], 0), (0, [], 1)
    ]  # fmt: skip


def test_events_set_aside_are_remembered_and_never_counted_again() -> None:
    state = set_aside(BadgeState(recent_event_ids=["x"]), ["bad"])
    assert state.recent_event_ids == ["x", "bad"]
    again = decide(state, [use("bad")])
    assert again.progress == [] and not again.to_record
