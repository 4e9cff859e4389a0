"""The anti-gaming screen: events arriving faster than a person plausibly produces them are held
for review instead of counting.

Rates are measured on ARRIVAL times (the member workflow's clock), never on the events' own
timestamps, which the sender controls. Back-dated events (stamped well before they arrived) have
limits of their own over a day of arrivals: a scanner that was offline may back-fill a member's
check-in or two, but a week of "daily" check-ins arriving at once is a burst, whatever its stamps.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from badges.domain.events import BadgeEvent


class PlausibilityLimit(BaseModel):
    """At most `max_events` events of `event_type` may arrive within any `per_seconds` seconds.

    With `backdated_seconds`, the limit counts only back-dated events: those stamped more than
    that many seconds before they arrived.
    """

    model_config = ConfigDict(frozen=True)

    event_type: str
    max_events: int = Field(gt=0)
    per_seconds: int = Field(gt=0)
    backdated_seconds: int | None = Field(default=None, gt=0)

    @property
    def record(self) -> str:
        """The arrival record the limit counts in: one per event type, and one for its back-dated events."""
        return self.event_type if self.backdated_seconds is None else f"{self.event_type}/backdated"

    def counts(self, event: BadgeEvent, arrived: datetime) -> bool:
        return self.backdated_seconds is None or event.timestamp < arrived - timedelta(seconds=self.backdated_seconds)

    def describe(self, count: int) -> str:
        stamped = (
            "" if self.backdated_seconds is None else f" stamped over {_span(self.backdated_seconds)} before arrival,"
        )
        return f"{count} {self.event_type} events{stamped} within {self.per_seconds} s; limit {self.max_events}"


# Before back-dated events were screened (workflow histories recorded then replay with these).
ARRIVAL_LIMITS: tuple[PlausibilityLimit, ...] = (
    PlausibilityLimit(event_type="attendance", max_events=10, per_seconds=60),
    PlausibilityLimit(event_type="voting", max_events=30, per_seconds=60),
    PlausibilityLimit(event_type="tool_usage", max_events=30, per_seconds=60),
)
DAY = 24 * 3600
BACKDATED_LIMITS: tuple[PlausibilityLimit, ...] = (
    PlausibilityLimit(event_type="attendance", max_events=2, per_seconds=DAY, backdated_seconds=3600),
    PlausibilityLimit(event_type="voting", max_events=3, per_seconds=DAY, backdated_seconds=3600),
    PlausibilityLimit(event_type="tool_usage", max_events=3, per_seconds=DAY, backdated_seconds=3600),
)
DEFAULT_LIMITS: tuple[PlausibilityLimit, ...] = ARRIVAL_LIMITS + BACKDATED_LIMITS


def _span(seconds: int) -> str:
    return f"{seconds // 3600} h" if seconds % 3600 == 0 else f"{seconds} s"


class HeldBatch(BaseModel):
    """Events of one type held back by one screening, waiting for a reviewer's decision.

    A member's workflow keeps only the review id, type and count of what it holds (`events`
    empty): the events themselves are stored with the review item and come back with an
    approval, so a flood nobody reviews cannot grow the workflow's state.
    """

    review_id: str
    event_type: str
    reason: str
    events: list[BadgeEvent]
    count: int = 0
    # The held events' size as JSON (UTF-8 bytes), so an item can be kept within its bounds
    # (`domain/batch.py`); 0 in items held before sizes were kept.
    size: int = 0


class Screening(BaseModel):
    admitted: list[BadgeEvent]
    held: list[HeldBatch]
    # The arrival record to keep: admitted arrivals of limited types, within their longest window.
    arrivals: dict[str, list[datetime]]


def screen(
    arrivals: Mapping[str, Sequence[datetime]],
    events: Sequence[BadgeEvent],
    now: datetime,
    limits: Sequence[PlausibilityLimit],
    make_review_id: Callable[[str], str],
    known_ids: Collection[str] = frozenset(),
) -> Screening:
    """Admit events while each limit of their type has room in its trailing window; hold the rest.

    Each event arrived at its `received_at` (stamped by the API with the server's clock, so a
    backlog processed late is not mistaken for a burst), or at `now` when it has none. Only
    ADMITTED events are recorded as arrivals: held events never
    enter the record, so releasing them later (evaluate them directly, not through the screen)
    cannot count them twice, and a long flood does not grow the record past `max_events` a type.
    Events of types without a limit are always admitted. Events whose id is in `known_ids` (already
    counted) or repeats an earlier one in this call are re-deliveries: they use no room; they go to
    `admitted` (the rule engine reports them as duplicates) unless their first copy was held here.
    Held events form one `HeldBatch` per type, in the order the types were first held;
    `make_review_id(event_type)` names each (the workflow passes a deterministic id maker).
    """
    by_type: dict[str, list[PlausibilityLimit]] = {}
    longest: dict[str, int] = {}  # each arrival record is kept for its limits' longest window
    for limit in limits:
        by_type.setdefault(limit.event_type, []).append(limit)
        longest[limit.record] = max(longest.get(limit.record, 0), limit.per_seconds)

    kept: dict[str, list[datetime]] = {}
    for record, times in arrivals.items():
        recent = [at for at in times if at > now - timedelta(seconds=longest.get(record, 0))]
        if recent:
            kept[record] = recent

    admitted: list[BadgeEvent] = []
    held: dict[str, list[BadgeEvent]] = {}
    first_breach: dict[str, PlausibilityLimit] = {}
    offered: dict[str, int] = {}  # fresh events counted in each record in this call, for the reason text
    fate: dict[str, bool] = {}  # event id -> admitted?
    for event in events:
        if event.id in fate:
            if fate[event.id]:
                admitted.append(event)
            continue
        type_limits = by_type.get(event.type)
        if not type_limits or event.id in known_ids:
            fate[event.id] = True
            admitted.append(event)
            continue
        at = min(event.received_at, now) if event.received_at is not None else now
        counting = [limit for limit in type_limits if limit.counts(event, at)]
        records = {limit.record: kept.setdefault(limit.record, []) for limit in counting}
        for record in records:
            offered[record] = offered.get(record, 0) + 1
        # Arrival times only move forward (several API processes may stamp slightly out of order).
        at = max([at, *(at for times in records.values() for at in times)])
        breached = next(
            (limit for limit in counting if _in_window(records[limit.record], at, limit) >= limit.max_events), None
        )
        if breached is None:
            for times in records.values():
                times.append(at)
            fate[event.id] = True
            admitted.append(event)
        else:
            fate[event.id] = False
            held.setdefault(event.type, []).append(event)
            first_breach.setdefault(event.type, breached)

    batches = []
    for event_type, held_events in held.items():
        limit = first_breach[event_type]
        earlier = _in_window(arrivals.get(limit.record, ()), now, limit)
        batches.append(
            HeldBatch(
                review_id=make_review_id(event_type),
                event_type=event_type,
                reason=limit.describe(earlier + offered[limit.record]),
                events=held_events,
            )
        )
    return Screening(admitted=admitted, held=batches, arrivals={t: times for t, times in kept.items() if times})


def _in_window(times: Sequence[datetime], now: datetime, limit: PlausibilityLimit) -> int:
    """Arrivals within the trailing `per_seconds` before `now` (an arrival exactly that old has left it)."""
    start = now - timedelta(seconds=limit.per_seconds)
    return sum(1 for at in times if start < at <= now)
