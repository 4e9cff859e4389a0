"""What crosses Temporal around `AuditCheckpointWorkflow`: the checkpoint it signed."""

from __future__ import annotations

from pydantic import BaseModel


class AuditCheckpointResult(BaseModel):
    checkpoint: int  # its sequence number in the checkpoint store
    audit_id: int  # the last audit record it vouches for
    records: int  # how many records up to and including it
