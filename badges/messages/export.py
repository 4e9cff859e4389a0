"""What crosses Temporal around `MemberExportWorkflow`: the request, its sections and its progress."""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class ExportRequest(BaseModel):
    user_id: uuid.UUID
    export_id: uuid.UUID


class ExportSection(ExportRequest):
    section: str


class ExportProgress(BaseModel):
    export_id: uuid.UUID
    sections_done: int = 0
    sections_total: int = 0
    rows: int = 0
    completed: bool = False
