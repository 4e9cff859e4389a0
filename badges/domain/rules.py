"""Real-time rule evaluation: a member's badge state plus a batch of events gives progress and awards.

Pure functions of their inputs (no clock, no randomness), so the member's workflow can call them
and tests need no server. Financial rule kinds are decided elsewhere (`behaviour.py`).

Each badge's progress (`RuleState`) remembers the definition version and rule kind it was built
under. A new version of the same kind carries the progress on under the new targets; a new kind
(or a streak's unit, or a distinct badge's field) starts it again. Awards are never revoked and
never given twice: an award instance once earned stays earned, and a badge whose every instance
is earned stops counting.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from badges.domain.definitions import (
    BadgeDefinition,
    CountRule,
    DistinctRule,
    RealTimeRule,
    Reward,
    StreakRule,
    TiersRule,
    WindowRule,
)
from badges.domain.events import BadgeEvent
from badges.domain.plausibility import HeldBatch

# How many recent event ids a member's state remembers for de-duplication. The API already
# refuses repeated ids through the database; this window catches re-deliveries of signals.
DEDUP_WINDOW = 2_000
# The only instance of a badge earned once (every kind but tiers).
SINGLE_INSTANCE = "1"


class StreakState(BaseModel):
    """A streak of consecutive units (days, or ISO weeks named by their Monday)."""

    last: date | None = None  # the latest unit with an event
    current: int = 0  # consecutive units ending at `last`
    best: int = 0
    # The units with events among the rule's `length` units ending at `last`, ascending: what a
    # late event needs to find out whether it closes a gap in the current streak.
    recent: list[date] = Field(default_factory=list)


class RuleState(BaseModel):
    """One badge's progress for one member, and the definition it was built under."""

    version: int
    kind: str
    # What the gathered data mean beyond the kind: a streak's unit, a distinct badge's field.
    basis: str = ""
    count: int = 0  # count and tiers
    distinct: list[str] = Field(default_factory=list)  # in order first seen, never more than the target
    streak: StreakState = Field(default_factory=StreakState)
    window: list[datetime] = Field(default_factory=list)  # latest matching timestamps, ascending, ≤ target
    awarded: dict[str, datetime] = Field(default_factory=dict)  # instance -> when it was earned


class BadgeState(BaseModel):
    """Everything a member's badge workflow carries, across continue-as-new too."""

    badges: dict[str, RuleState] = Field(default_factory=dict)
    recent_event_ids: list[str] = Field(default_factory=list)
    batch_seq: int = 0
    # Anti-gaming (see plausibility.py): recent admitted arrival times per event type, and the
    # bursts held for review.
    arrivals: dict[str, list[datetime]] = Field(default_factory=dict)
    held: list[HeldBatch] = Field(default_factory=list)
    # The last behaviour evaluation applied (bank-data badges, `domain/financial.py`).
    financial_seq: int = 0

    @model_validator(mode="before")
    @classmethod
    def _from_count_only_shape(cls, data: Any) -> Any:
        """Workflows started before rule kinds existed carry `{"counts": {badge: n}, "awarded":
        {badge: when}, ...}` across continue-as-new: those were count badges, version 1."""
        if not isinstance(data, dict) or "badges" in data or not ({"counts", "awarded"} & data.keys()):
            return data
        converted = {key: value for key, value in data.items() if key not in ("counts", "awarded")}
        counts: dict[str, int] = data.get("counts") or {}
        awarded: dict[str, Any] = data.get("awarded") or {}
        converted["badges"] = {
            badge_id: {
                "version": 1,
                "kind": "count",
                "count": counts.get(badge_id, 0),
                "awarded": {SINGLE_INSTANCE: awarded[badge_id]} if badge_id in awarded else {},
            }
            for badge_id in [*counts, *(badge_id for badge_id in awarded if badge_id not in counts)]
        }
        return converted


class StreamedModel(BaseModel):
    """Decisions that reach members' streams; camelCase there, like the rest of the API."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ProgressUpdate(StreamedModel):
    badge_id: str
    name: str
    value: int
    target: int
    kind: str = "count"
    version: int = 1
    tier: str | None = None  # tiers badges: the highest tier reached, if any


class Award(StreamedModel):
    badge_id: str
    name: str
    instance: str
    awarded_at: datetime
    version: int = 1  # the definition version it was earned under
    reward: Reward | None = None


class Evaluation(BaseModel):
    state: BadgeState
    progress: list[ProgressUpdate]
    awards: list[Award]
    duplicates: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.progress or self.awards)


def evaluate(
    state: BadgeState,
    events: Sequence[BadgeEvent],
    catalogue: Sequence[BadgeDefinition],
    *,
    awarded_at: datetime | None = None,
) -> Evaluation:
    """Apply a batch of events to a state; returns the new state and what changed.

    The input state is not modified. Events whose id was seen before (in this batch or in the
    de-duplication window) are skipped and listed in `duplicates`. Only active definitions with
    real-time rule kinds count. Progress is reported once per badge per batch that a matching
    event touched, with the value after the whole batch; an award is reported once, ever, per
    badge instance, with the deciding event's timestamp (or `awarded_at` when given, e.g. for
    held events a reviewer released).
    """
    live = [badge for badge in catalogue if _is_live(badge)]
    working: dict[str, RuleState] = {}  # badges' progress fitted to their current definitions
    seen = list(state.recent_event_ids)
    seen_set = set(seen)
    touched: dict[str, None] = {}
    awards: list[Award] = []
    duplicates: list[str] = []

    for event in events:
        if event.id in seen_set:
            duplicates.append(event.id)
            continue
        seen.append(event.id)
        seen_set.add(event.id)
        for badge in live:
            rule = _rule(badge)
            if not _matches(rule, event):
                continue
            if badge.badge_id not in working:
                working[badge.badge_id] = _reconciled(state.badges.get(badge.badge_id), badge)
            progress = working[badge.badge_id]
            if _fully_awarded(rule, progress):
                continue
            _apply(rule, progress, event)
            touched[badge.badge_id] = None
            awards.extend(_new_awards(badge, progress, awarded_at or event.timestamp))

    # Only badges an event counted into change; a fully awarded badge keeps its stored progress,
    # so a later `reevaluate` still sees that its definition changed.
    badges = {**state.badges, **{badge_id: working[badge_id] for badge_id in touched}}
    by_id = {badge.badge_id: badge for badge in live}
    progress_updates = [_progress_update(by_id[badge_id], badges[badge_id]) for badge_id in touched]
    return _evaluation(state, badges, seen, progress_updates, awards, duplicates)


def reevaluate(
    state: BadgeState, catalogue: Sequence[BadgeDefinition], badge_ids: Collection[str], now: datetime
) -> Evaluation:
    """Re-check the named badges' progress against their CURRENT definitions, with no new events.

    Awards whatever the progress already earns under the current definition (a target lowered
    below where the member stands), with `awarded_at=now`; reports progress for each badge whose
    definition changed since its progress was built (new version or kind: value or target may
    differ now). A badge without progress, or without an active real-time definition, is skipped.
    Idempotent: a second call finds nothing to change.
    """
    by_id = {badge.badge_id: badge for badge in catalogue if _is_live(badge)}
    badges = dict(state.badges)
    progress_updates: list[ProgressUpdate] = []
    awards: list[Award] = []
    for badge_id in dict.fromkeys(badge_ids):
        badge = by_id.get(badge_id)
        existing = badges.get(badge_id)
        if badge is None or existing is None:
            continue
        progress = _reconciled(existing, badge)
        redefined = (existing.version, existing.kind) != (progress.version, progress.kind)
        earned = _new_awards(badge, progress, now)
        if not redefined and not earned:
            continue
        badges[badge_id] = progress
        awards.extend(earned)
        if redefined:
            progress_updates.append(_progress_update(badge, progress))
    return _evaluation(state, badges, state.recent_event_ids, progress_updates, awards, [])


# --- matching and state upkeep -------------------------------------------------------------------


def _is_live(badge: BadgeDefinition) -> bool:
    return badge.active and badge.real_time


def _rule(badge: BadgeDefinition) -> RealTimeRule:
    rule = badge.rule
    if not isinstance(rule, RealTimeRule):
        raise TypeError(f"badge {badge.badge_id!r} has a {rule.kind} rule: it is not evaluated on events")
    return rule


def _matches(rule: RealTimeRule, event: BadgeEvent) -> bool:
    if event.type != rule.event_type:
        return False
    if isinstance(rule, DistinctRule):
        return rule.field in event.event_data
    return all(event.event_data.get(key) == value for key, value in rule.event_data_match.items())


def _basis(rule: RealTimeRule) -> str:
    if isinstance(rule, StreakRule):
        return rule.unit
    if isinstance(rule, DistinctRule):
        return rule.field
    return ""


def _reconciled(existing: RuleState | None, badge: BadgeDefinition) -> RuleState:
    """A copy of the badge's progress fitted to its current definition (never the stored object)."""
    rule = _rule(badge)
    basis = _basis(rule)
    if existing is None:
        return RuleState(version=badge.version, kind=rule.kind, basis=basis)
    if (existing.kind, existing.basis) != (rule.kind, basis):
        # The gathered data mean something else under the new rule: start again, keep the awards.
        return RuleState(version=badge.version, kind=rule.kind, basis=basis, awarded=dict(existing.awarded))
    return existing.model_copy(update={"version": badge.version}, deep=True)


def _instances(rule: RealTimeRule) -> list[str]:
    return [tier.name for tier in rule.tiers] if isinstance(rule, TiersRule) else [SINGLE_INSTANCE]


def _fully_awarded(rule: RealTimeRule, progress: RuleState) -> bool:
    return all(instance in progress.awarded for instance in _instances(rule))


def _apply(rule: RealTimeRule, progress: RuleState, event: BadgeEvent) -> None:
    """Count one matching event into `progress` (a working copy owned by the caller)."""
    if isinstance(rule, CountRule | TiersRule):
        progress.count += 1
    elif isinstance(rule, DistinctRule):
        value = str(event.event_data[rule.field])
        if value not in progress.distinct and len(progress.distinct) < rule.target:
            progress.distinct.append(value)
    elif isinstance(rule, StreakRule):
        _extend_streak(progress.streak, _unit(event.day, rule.unit), rule)
    else:
        _add_to_window(progress, event.timestamp, rule)


def _unit(day: date, unit: str) -> date:
    """The streak unit a day falls in: the day itself, or the Monday of its ISO week."""
    return day - timedelta(days=day.weekday()) if unit == "week" else day


def _extend_streak(streak: StreakState, unit: date, rule: StreakRule) -> None:
    """Several events in one unit count once; a gap starts the streak again at 1.

    A late event (for a unit before the latest one) never breaks or shortens the streak and is
    never counted twice: if it falls in a gap among the last `length` units, the run ending at
    the latest unit is measured again and may grow (an offline check-in that syncs a day late
    still joins the streak). Older late events change nothing.
    """
    step = timedelta(days=7 if rule.unit == "week" else 1)
    last = streak.last
    if last is None or unit > last:
        streak.current = streak.current + 1 if last is not None and unit - last == step else 1
        streak.last = unit
        streak.recent.append(unit)
    elif unit < last and unit not in streak.recent and unit > last - step * rule.length:
        bisect.insort(streak.recent, unit)
        run = 0
        expected = last
        for kept in reversed(streak.recent):
            if kept != expected:
                break
            run += 1
            expected -= step
        streak.current = max(streak.current, run)
    assert streak.last is not None  # set above whenever an event was seen
    horizon = streak.last - step * rule.length
    streak.recent = [kept for kept in streak.recent if kept > horizon]
    streak.best = max(streak.best, streak.current)


def _add_to_window(progress: RuleState, timestamp: datetime, rule: WindowRule) -> None:
    """Keep the `target` latest matching timestamps, in order, whatever order they arrive in."""
    bisect.insort(progress.window, timestamp)
    if _window_reached(progress.window, rule):
        # Remember the window that earned it before trimming might cut it apart.
        progress.window = _earning_window(progress.window, rule)
    else:
        del progress.window[: max(0, len(progress.window) - rule.target)]


def _window_span(rule: WindowRule) -> timedelta:
    return timedelta(days=rule.within_days)


def _window_reached(times: Sequence[datetime], rule: WindowRule) -> bool:
    """`target` timestamps within `within_days` days of each other; exactly `within_days` apart counts."""
    span = _window_span(rule)
    return any(times[i + rule.target - 1] - times[i] <= span for i in range(len(times) - rule.target + 1))


def _earning_window(times: Sequence[datetime], rule: WindowRule) -> list[datetime]:
    span = _window_span(rule)
    for i in range(len(times) - rule.target, -1, -1):
        if times[i + rule.target - 1] - times[i] <= span:
            return list(times[i : i + rule.target])
    return list(times[-rule.target :])


def _window_value(times: Sequence[datetime], rule: WindowRule) -> int:
    """How many kept events fall in the `within_days` ending at the latest one."""
    if not times:
        return 0
    start = times[-1] - _window_span(rule)
    return sum(1 for at in times if at >= start)


# --- what progress means, and what it earns ----------------------------------------------------


def _value_and_target(rule: RealTimeRule, progress: RuleState) -> tuple[int, int]:
    if isinstance(rule, CountRule):
        return progress.count, rule.target
    if isinstance(rule, DistinctRule):
        return len(progress.distinct), rule.target
    if isinstance(rule, StreakRule):
        return progress.streak.current, rule.length
    if isinstance(rule, WindowRule):
        return _window_value(progress.window, rule), rule.target
    upcoming = [tier.target for tier in rule.tiers if tier.target > progress.count]
    return progress.count, upcoming[0] if upcoming else rule.tiers[-1].target


def _reached_instances(rule: RealTimeRule, progress: RuleState) -> list[str]:
    if isinstance(rule, TiersRule):
        return [tier.name for tier in rule.tiers if progress.count >= tier.target]
    if isinstance(rule, WindowRule):
        reached = _window_reached(progress.window, rule)
    elif isinstance(rule, StreakRule):
        # The best run, not the current one: under an unchanged definition they agree whenever it
        # matters (the run is awarded as it reaches the length), and after the length is lowered a
        # member who once held a run that long has earned it.
        reached = progress.streak.best >= rule.length
    else:
        value, target = _value_and_target(rule, progress)
        reached = value >= target
    return [SINGLE_INSTANCE] if reached else []


def _new_awards(badge: BadgeDefinition, progress: RuleState, awarded_at: datetime) -> list[Award]:
    """Instances reached and not yet held: recorded in `progress.awarded` and returned."""
    awards = []
    for instance in _reached_instances(_rule(badge), progress):
        if instance in progress.awarded:
            continue
        progress.awarded[instance] = awarded_at
        awards.append(award(badge, instance, awarded_at))
    return awards


def award(badge: BadgeDefinition, instance: str, awarded_at: datetime) -> Award:
    """An award of one instance of the badge, under its current version and with its reward."""
    return Award(
        badge_id=badge.badge_id,
        name=badge.name,
        instance=instance,
        awarded_at=awarded_at,
        version=badge.version,
        reward=badge.reward,
    )


def _progress_update(badge: BadgeDefinition, progress: RuleState) -> ProgressUpdate:
    rule = _rule(badge)
    value, target = _value_and_target(rule, progress)
    tier = None
    if isinstance(rule, TiersRule):
        tier = next((t.name for t in reversed(rule.tiers) if progress.count >= t.target), None)
    return ProgressUpdate(
        badge_id=badge.badge_id,
        name=badge.name,
        value=value,
        target=target,
        kind=rule.kind,
        version=badge.version,
        tier=tier,
    )


def _evaluation(
    state: BadgeState,
    badges: dict[str, RuleState],
    seen: Iterable[str],
    progress: list[ProgressUpdate],
    awards: list[Award],
    duplicates: list[str],
) -> Evaluation:
    new_state = state.model_copy(
        update={
            "badges": badges,
            "recent_event_ids": list(seen)[-DEDUP_WINDOW:],
            "batch_seq": state.batch_seq + (1 if progress or awards else 0),
        }
    )
    return Evaluation(state=new_state, progress=progress, awards=awards, duplicates=duplicates)
