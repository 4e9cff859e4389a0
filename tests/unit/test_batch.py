"""Pure tests of what one batch of a member's work decides (`domain/batch.py`): held bursts,
reviewers' decisions, the de-duplication window and re-evaluations, without a workflow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from badges.domain.batch import BatchOutcome, apply_decisions, decide_batch, join_open_reviews
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
