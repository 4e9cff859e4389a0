"""What one batch of a member's work decides: the events that arrived, reviewers' decisions on
held bursts and admins' re-evaluations, applied to the member's badge state.

Pure: the member's workflow takes everything queued since its last batch, calls `decide_batch`
and records the outcome. The order of the steps is part of the behaviour: approved bursts count
first (as of the decision), then the screened arrivals, then the re-evaluations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from badges.domain.definitions import BadgeDefinition
from badges.domain.events import BadgeEvent
from badges.domain.plausibility import DEFAULT_LIMITS, HeldBatch, PlausibilityLimit, screen
from badges.domain.rules import DEDUP_WINDOW, Award, BadgeState, Evaluation, ProgressUpdate, evaluate, reevaluate


class Decision(Protocol):
    """A reviewer's decision on a held burst, with the burst's events as stored with its review item."""

    @property
    def review_id(self) -> str: ...

    @property
    def approved(self) -> bool: ...

    @property
    def events(self) -> Sequence[BadgeEvent]: ...


class Reevaluation(Protocol):
    """An admin's request to re-check badges under their current definitions."""

    @property
    def badge_ids(self) -> Sequence[str]: ...


D = TypeVar("D", bound=Decision)


@dataclass(frozen=True, slots=True)
class Decided(Generic[D]):
    """Held bursts after reviewers' decisions."""

    released: list[BadgeEvent]  # approved: they count now, bypassing the screen
    rejected_ids: list[str]  # rejected: they never count
    resolved: list[D]  # the decisions that matched a burst still held
    still_held: list[HeldBatch]


def apply_decisions(held: Sequence[HeldBatch], decisions: Sequence[D]) -> Decided[D]:
    """Match decisions to the bursts held; a decision for no burst held (decided twice) is ignored."""
    released: list[BadgeEvent] = []
    resolved: list[D] = []
    still_held: list[HeldBatch] = []
    rejected_ids: list[str] = []
    decided = {decision.review_id: decision for decision in decisions}
    for batch in held:
        decision = decided.get(batch.review_id)
        if decision is None:
            still_held.append(batch)
            continue
        resolved.append(decision)
        # The events come back with the decision, from the review item they are stored with.
        returned = [event for event in decision.events if event.type == batch.event_type] + batch.events
        if decision.approved:
            released.extend(returned)
        else:
            rejected_ids.extend(event.id for event in returned)
    return Decided(released=released, rejected_ids=rejected_ids, resolved=resolved, still_held=still_held)


def join_open_reviews(still_held: list[HeldBatch], newly_held: Sequence[HeldBatch]) -> list[HeldBatch]:
    """Fold bursts held by this batch's screen into `still_held` (changed in place): a burst often
    spans several batches, so what it adds joins the review item still open for that event type
    and a reviewer sees one item per burst. The state keeps only the item and a count.

    Returns the review items to store, one per newly held burst, with its events and the id of
    the item it joined (the events go to the database with the item)."""
    for batch in newly_held:
        open_item = next((item for item in still_held if item.event_type == batch.event_type), None)
        if open_item is None:
            still_held.append(batch.model_copy(update={"events": [], "count": len(batch.events)}))
        else:
            grown = open_item.model_copy(update={"count": open_item.count + len(batch.events), "reason": batch.reason})
            still_held[still_held.index(open_item)] = grown
    return [
        batch.model_copy(
            update={"review_id": next(item.review_id for item in still_held if item.event_type == batch.event_type)}
        )
        for batch in newly_held
    ]


@dataclass(frozen=True, slots=True)
class BatchOutcome(Generic[D]):
    state: BadgeState
    progress: list[ProgressUpdate]  # one per badge, its value after the whole batch
    awards: list[Award]
    reviews: list[HeldBatch]  # review items to store: newly held events, by the item they joined
    resolved: list[D]  # reviewers' decisions applied

    @property
    def to_record(self) -> bool:
        return bool(self.progress or self.awards or self.reviews or self.resolved)


def decide_batch(
    state: BadgeState,
    events: Sequence[BadgeEvent],
    decisions: Sequence[D],
    reevaluations: Sequence[Reevaluation],
    catalogue: Sequence[BadgeDefinition],
    now: datetime,
    make_review_id: Callable[[str], str],
    limits: Sequence[PlausibilityLimit] = DEFAULT_LIMITS,
) -> BatchOutcome[D]:
    """Apply one batch to the member's state. `now` is the workflow's clock; `make_review_id`
    names each newly held burst (the workflow passes a deterministic id maker)."""
    decided = apply_decisions(state.held, decisions)
    # Re-delivered events are dropped by id in `screen` and `evaluate` (the window of recent ids).
    screening = screen(state.arrivals, events, now, limits, make_review_id, state.recent_event_ids)
    still_held = decided.still_held
    reviews = join_open_reviews(still_held, screening.held)
    # Rejected events are remembered like counted ones, so a re-delivered signal cannot bring them back.
    seen = (state.recent_event_ids + decided.rejected_ids)[-DEDUP_WINDOW:]
    state = state.model_copy(update={"arrivals": screening.arrivals, "held": still_held, "recent_event_ids": seen})

    # Approved events count as of the decision, not as of when they were sent.
    released = evaluate(state, decided.released, catalogue, awarded_at=now) if decided.released else None
    if released is not None:
        state = released.state
    admitted = evaluate(state, screening.admitted, catalogue)
    state = admitted.state
    progress: dict[str, ProgressUpdate] = {}
    awards: list[Award] = []
    parts: tuple[Evaluation | None, ...] = (released, admitted)
    for part in parts:
        if part is not None:
            progress.update({update.badge_id: update for update in part.progress})
            awards.extend(part.awards)
    if reevaluations:
        badge_ids = sorted({badge_id for request in reevaluations for badge_id in request.badge_ids})
        again = reevaluate(state, catalogue, badge_ids, now)
        progress.update({update.badge_id: update for update in again.progress})
        awards.extend(again.awards)
        state = again.state
    return BatchOutcome(
        state=state, progress=list(progress.values()), awards=awards, reviews=reviews, resolved=decided.resolved
    )
