"""What crosses Temporal around `ReevaluationWorkflow`: its input and progress, and its
activities' pages of members and signal batches."""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class ReevaluationInput(BaseModel):
    badge_id: str
    version: int
    catalogue_revision: int
    after: uuid.UUID | None = None  # where a continued run picks up
    members_signalled: int = 0


class ReevaluationProgress(BaseModel):
    members_signalled: int
    done: bool


class MemberPage(BaseModel):
    member_ids: list[uuid.UUID]


class ReevaluationSignals(BaseModel):
    member_ids: list[uuid.UUID]
    badge_id: str
    catalogue_revision: int
