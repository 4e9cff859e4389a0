"""What crosses Temporal around `UserBadgesWorkflow`: its input and query answer, the signals
(events, re-evaluation requests, reviewers' decisions) and the arguments and results of its
local activities (`load_catalogue`, `record_progress`, `load_held_events`, `record_dead_letter`)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel, Field, ValidationInfo, ValidatorFunctionWrapHandler, model_validator

from badges.domain.definitions import BadgeDefinition
from badges.domain.events import BadgeEvent
from badges.domain.rules import Award, BadgeState, ProgressUpdate
from badges.messages.behaviour import FinancialResults
from badges.messages.comparisons import ComparativeResults


class CatalogueSnapshot(BaseModel):
    """Every badge's newest definition at a catalogue revision (0: the built-in legacy badges).

    Read from a payload (every member workflow's input carries one), an equal snapshot read before
    is returned instead of a new one: a worker caches thousands of member workflows, and each
    copy of the catalogue is some 250 objects that every full garbage collection walks
    (bench/worker_gc.py). So a snapshot is never changed in place: a newer one replaces it."""

    revision: int = 0
    badges: list[BadgeDefinition] = Field(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _one_copy(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> CatalogueSnapshot:
        # Only what is read from JSON (a payload: the data converter's `validate_json`); a snapshot
        # built in code is its own object, as `__init__` must return.
        if info.mode != "json" or not isinstance(value, dict):
            return cast(CatalogueSnapshot, handler(value))
        key = json.dumps(value, sort_keys=True)
        found = _READ_SNAPSHOTS.get(key)
        if found is None:
            found = cast(CatalogueSnapshot, handler(value))
            if len(_READ_SNAPSHOTS) >= READ_SNAPSHOTS_KEPT:
                _READ_SNAPSHOTS.pop(next(iter(_READ_SNAPSHOTS)))
            _READ_SNAPSHOTS[key] = found
        return found


# The snapshots read so far, by their content: the few revisions the live workflows hold.
READ_SNAPSHOTS_KEPT = 16
_READ_SNAPSHOTS: dict[str, CatalogueSnapshot] = {}


class ReevaluationRequest(BaseModel):
    """What a member's workflow receives: re-check these badges under at least this revision."""

    badge_ids: list[str]
    catalogue_revision: int


class ReviewDecision(BaseModel):
    review_id: str
    approved: bool
    resolved_by: str
    # The held events of the item. The API sends none (the signal stays small however large the
    # item): the workflow loads them in pages (`load_held_events`). Decisions sent before that
    # carried every held event here, and are applied with them.
    events: list[BadgeEvent] = Field(default_factory=list)


class UserBadgesInput(BaseModel):
    user_id: uuid.UUID
    state: BadgeState = Field(default_factory=BadgeState)
    # Work that arrived after the last batch of the previous run.
    pending: list[BadgeEvent] = Field(default_factory=list)
    reevaluations: list[ReevaluationRequest] = Field(default_factory=list)
    decisions: list[ReviewDecision] = Field(default_factory=list)
    # None: the built-in legacy catalogue (revision 0), until an event names a newer revision.
    catalogue: CatalogueSnapshot | None = None
    # Behaviour evaluations not yet recorded (`financial` signals).
    financial: list[FinancialResults] = Field(default_factory=list)
    # Comparative-badge verdicts of peer releases not yet recorded (`comparative` signals).
    comparative: list[ComparativeResults] = Field(default_factory=list)
    # True for every run started since back-dated events are screened: such a run screens them
    # without asking `workflow.patched`, whose first call in a run records a marker and makes
    # Temporal index a search attribute, on the first event of every new member's workflow.
    # Runs started before leave it unset and ask, as they always did.
    screens_back_dated: bool = False


class BadgeSnapshot(BaseModel):
    state: BadgeState
    pending: int
    catalogue_revision: int


class HeldReview(BaseModel):
    """Events of a burst held back from awarding until a reviewer decides (new in this batch)."""

    review_id: str
    event_type: str
    reason: str
    events: list[BadgeEvent]


class ProgressBatch(BaseModel):
    user_id: uuid.UUID
    batch_seq: int  # the workflow's count of batches: a later batch's values win
    progress: list[ProgressUpdate]
    awards: list[Award]
    held: list[HeldReview] = Field(default_factory=list)
    resolved: list[ReviewDecision] = Field(default_factory=list)
    # When the workflow decided (its clock): rewards are charged to this month's budget, never to
    # the month of an event's timestamp, which the sender chooses.
    decided_at: datetime | None = None
    # The member events this batch decided (the worker's `badges_events_applied_total`); 0 from a
    # run that did not send it, and for work that is no event (reviews, re-evaluations, windows).
    events: int = 0


class HeldEventsRequest(BaseModel):
    """A page of a review item's held events, those stored after position `after` (0: from the
    first), at most `max_events` of them and `max_bytes` of JSON (at least one, whatever its size)."""

    user_id: uuid.UUID
    review_id: str
    after: int = 0
    max_events: int
    max_bytes: int


class HeldEventsPage(BaseModel):
    events: list[BadgeEvent]
    next_after: int | None  # where the next page starts; None: this page was the last


class DeadLetter(BaseModel):
    """Work a member's workflow could not apply, set aside instead of retried forever: one
    reviewer's decision (with its held events, if they were loaded), one event, or the
    re-evaluations of one batch. `reason` is what failed, without data; `detail` is the error as
    raised (it may quote the data: it is stored sealed with the payload)."""

    user_id: uuid.UUID
    reason: str
    detail: str = ""
    events: list[BadgeEvent] = Field(default_factory=list)
    decisions: list[ReviewDecision] = Field(default_factory=list)
    reevaluations: list[ReevaluationRequest] = Field(default_factory=list)
