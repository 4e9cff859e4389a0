"""Rule evaluation: a member's badge state plus a batch of events gives progress and awards.

Pure functions of their inputs, so the workflow can call them and tests need no server.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from badges.domain.catalogue import BadgeDefinition, CountRule
from badges.domain.events import BadgeEvent

# How many recent event ids a member's state remembers for de-duplication. The API already
# refuses repeated ids through the database; this window catches re-deliveries of signals.
DEDUP_WINDOW = 2_000


class BadgeState(BaseModel):
    """Everything a member's badge workflow carries, across continue-as-new too."""

    counts: dict[str, int] = Field(default_factory=dict)
    awarded: dict[str, datetime] = Field(default_factory=dict)
    recent_event_ids: list[str] = Field(default_factory=list)
    batch_seq: int = 0


class StreamedModel(BaseModel):
    """Decisions that reach members' streams; camelCase there, like the rest of the API."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ProgressUpdate(StreamedModel):
    badge_id: str
    name: str
    value: int
    target: int


class Award(StreamedModel):
    badge_id: str
    name: str
    instance: str
    awarded_at: datetime


class Evaluation(BaseModel):
    state: BadgeState
    progress: list[ProgressUpdate]
    awards: list[Award]
    duplicates: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.progress or self.awards)


def count_rule_matches(rule: CountRule, event: BadgeEvent) -> bool:
    if event.type != rule.event_type:
        return False
    return all(event.event_data.get(key) == value for key, value in rule.event_data_match.items())


def evaluate(state: BadgeState, events: Sequence[BadgeEvent], catalogue: Sequence[BadgeDefinition]) -> Evaluation:
    """Apply a batch of events to a state; returns the new state and what changed.

    The input state is not modified. Progress is reported once per badge per batch, with the
    value after the whole batch; an award is reported once, ever, per badge instance.
    """
    counts = dict(state.counts)
    awarded = dict(state.awarded)
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
        for badge in catalogue:
            rule = badge.rule
            if not count_rule_matches(rule, event):
                continue
            if badge.badge_id in awarded:
                continue
            counts[badge.badge_id] = counts.get(badge.badge_id, 0) + 1
            touched[badge.badge_id] = None
            if counts[badge.badge_id] >= rule.target:
                awarded[badge.badge_id] = event.timestamp
                awards.append(Award(badge_id=badge.badge_id, name=badge.name, instance="1", awarded_at=event.timestamp))

    by_id = {badge.badge_id: badge for badge in catalogue}
    progress = [
        ProgressUpdate(
            badge_id=badge_id,
            name=by_id[badge_id].name,
            value=counts[badge_id],
            target=by_id[badge_id].rule.target,
        )
        for badge_id in touched
    ]
    new_state = BadgeState(
        counts=counts,
        awarded=awarded,
        recent_event_ids=seen[-DEDUP_WINDOW:],
        batch_seq=state.batch_seq + (1 if progress or awards else 0),
    )
    return Evaluation(state=new_state, progress=progress, awards=awards, duplicates=duplicates)
