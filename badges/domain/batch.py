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


@dataclass(frozen=True, slots=True)
class ReviewBounds:
    """How much one review item may hold. Past either bound a burst goes on in a new item, so no
    item, and no page of its events handed back on approval, grows without bound."""

    max_events: int = 500
    max_bytes: int = 256 * 1024  # the events as JSON, UTF-8


REVIEW_BOUNDS = ReviewBounds()


def event_size(event: BadgeEvent) -> int:
    """An event's size as JSON (UTF-8 bytes), as a review item counts it."""
    return len(event.model_dump_json().encode())


def _never_split() -> bool:
    return False


def join_open_reviews(
    still_held: list[HeldBatch],
    newly_held: Sequence[HeldBatch],
    bounds: ReviewBounds | None = None,
    may_split: Callable[[], bool] = _never_split,
    make_review_id: Callable[[str], str] | None = None,
) -> list[HeldBatch]:
    """Fold bursts held by this batch's screen into `still_held` (changed in place): a burst often
    spans several batches, so what it adds joins the review item still open for that event type
    and a reviewer sees one item per burst. The state keeps only the item, a count and a size.

    With `bounds`, an item that would pass them is closed and the burst goes on in a new item:
    the first named as the screen named this batch's burst, any further one by `make_review_id`.
    `may_split()` is asked before each such split (the workflow's version gate); False keeps the
    unbounded behaviour of items held before bounds existed.

    Returns the review items to store, one per item this batch adds to, with the events it adds
    (the events go to the database with the item)."""
    stored: list[HeldBatch] = []
    for batch in newly_held:
        fresh_ids = [batch.review_id]  # the screen's name for this burst, used if it opens an item
        open_at = _open_item(still_held, batch.event_type)
        groups: list[tuple[int, list[BadgeEvent]]] = []  # (item index, events it gets)
        for event in batch.events:
            size = event_size(event) if bounds is not None else 0
            if open_at is not None and bounds is not None and _would_pass(still_held[open_at], size, bounds):
                open_at = None if may_split() else open_at
            if open_at is None:
                review_id = fresh_ids.pop() if fresh_ids else _required(make_review_id)(batch.event_type)
                opened = batch.model_copy(update={"review_id": review_id, "events": [], "count": 0, "size": 0})
                still_held.append(opened)
                open_at = len(still_held) - 1
            item = still_held[open_at]
            still_held[open_at] = item.model_copy(
                update={"count": item.count + 1, "size": item.size + size, "reason": batch.reason}
            )
            if not groups or groups[-1][0] != open_at:
                groups.append((open_at, []))
            groups[-1][1].append(event)
        stored.extend(
            batch.model_copy(update={"review_id": still_held[at].review_id, "events": events}) for at, events in groups
        )
    return stored


def _open_item(held: Sequence[HeldBatch], event_type: str) -> int | None:
    """The index of the item still open for `event_type` (the newest of that type), if any."""
    return next((at for at in range(len(held) - 1, -1, -1) if held[at].event_type == event_type), None)


def _would_pass(item: HeldBatch, size: int, bounds: ReviewBounds) -> bool:
    """Whether one more event of `size` bytes takes a non-empty item past its bounds."""
    return item.count > 0 and (item.count + 1 > bounds.max_events or item.size + size > bounds.max_bytes)


def _required(make_review_id: Callable[[str], str] | None) -> Callable[[str], str]:
    if make_review_id is None:
        raise ValueError("splitting a review item needs make_review_id")
    return make_review_id


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
    review_bounds: ReviewBounds | None = None,
    may_split: Callable[[], bool] = _never_split,
) -> BatchOutcome[D]:
    """Apply one batch to the member's state. `now` is the workflow's clock; `make_review_id`
    names each newly held burst (the workflow passes a deterministic id maker). `review_bounds`
    and `may_split`: see `join_open_reviews` (without bounds, items grow as they did before)."""
    decided = apply_decisions(state.held, decisions)
    # Re-delivered events are dropped by id in `screen` and `evaluate` (the window of recent ids).
    screening = screen(state.arrivals, events, now, limits, make_review_id, state.recent_event_ids)
    still_held = decided.still_held
    reviews = join_open_reviews(still_held, screening.held, review_bounds, may_split, make_review_id)
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


R = TypeVar("R", bound=Reevaluation)


@dataclass(frozen=True, slots=True)
class Work(Generic[D, R]):
    """One batch of a member's work, in the order `decide_batch` applies it: reviewers' decisions,
    then arrivals, then re-evaluations (all of them one item: they name badges, not events)."""

    decisions: Sequence[D] = ()
    events: Sequence[BadgeEvent] = ()
    reevaluations: Sequence[R] = ()

    @property
    def items(self) -> int:
        return len(self.decisions) + len(self.events) + (1 if self.reevaluations else 0)

    def halves(self) -> tuple[Work[D, R], Work[D, R]]:
        """The first half of the items and the rest, in order: a batch that cannot be applied is
        split until the item that cannot be applied stands alone (bisection: a few attempts for
        one bad item among thousands)."""
        middle = self.items // 2
        decisions, events = len(self.decisions), len(self.events)
        first = Work(
            decisions=self.decisions[:middle],
            events=self.events[: max(0, middle - decisions)],
            reevaluations=self.reevaluations if middle > decisions + events else (),
        )
        rest = Work(
            decisions=self.decisions[middle:],
            events=self.events[max(0, middle - decisions) :],
            reevaluations=() if middle > decisions + events else self.reevaluations,
        )
        return first, rest


def set_aside(state: BadgeState, event_ids: Sequence[str]) -> BadgeState:
    """The state after events were set aside (dead-lettered): remembered like counted ones, so a
    re-delivered signal does not bring them back to fail again; nothing else changes."""
    if not event_ids:
        return state
    return state.model_copy(update={"recent_event_ids": (state.recent_event_ids + list(event_ids))[-DEDUP_WINDOW:]})
