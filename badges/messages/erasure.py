"""What crosses Temporal around `ErasureWorkflow`: its input and outcome, and its steps' arguments."""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class ErasureInput(BaseModel):
    user_id: uuid.UUID


class ErasureOutcome(BaseModel):
    reference: uuid.UUID
    bank_connections_removed: int = 0
    workflows_ended: int
    rows_deleted: dict[str, int]
    keys_destroyed: int


class ErasureStep(BaseModel):
    user_id: uuid.UUID
    reference: uuid.UUID  # names the erasure in the audit log instead of the member


class ErasureRecord(ErasureStep):
    """A step done elsewhere (or the end), for the audit log: counts only."""

    action: str
    details: dict[str, int] = {}
