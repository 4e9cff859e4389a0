"""`GET /v1/admin/audit`: the audit log for compliance (and admins), filtered and paged oldest first.
Reading it is itself audited (by the staff dependency)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from badges.api.deps import CompliancePrincipal, ServicesDep
from badges.api.schemas import MAX_ROW_ID, IsoDateTime, WireModel
from badges.db.audit import AuditQuery, list_audit

router = APIRouter(tags=["compliance"])


class AuditRecordView(WireModel):
    id: int
    at: datetime
    actor: str
    actor_role: str
    action: str
    subject: uuid.UUID | None
    resource: str
    purpose: str
    details: dict[str, Any]
    prev_hash: str  # hex
    hash: str  # hex


class AuditPage(WireModel):
    records: list[AuditRecordView]
    next_after_id: int | None  # pass as `afterId` for the next page; null when this page was the last


@router.get("/v1/admin/audit", response_model=AuditPage)
async def read_audit(
    principal: CompliancePrincipal,
    services: ServicesDep,
    actor: str | None = None,
    subject: uuid.UUID | None = None,
    action: str | None = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
    after_id: Annotated[int, Query(alias="afterId", ge=0, le=MAX_ROW_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    # The name this parameter had before the API settled on camelCase: still read, no longer documented.
    legacy_after_id: Annotated[
        int | None, Query(alias="after_id", ge=0, le=MAX_ROW_ID, include_in_schema=False)
    ] = None,
) -> AuditPage:
    if legacy_after_id is not None and after_id == 0:
        after_id = legacy_after_id
    rows = await list_audit(
        services.engine,
        AuditQuery(
            actor=actor, subject=subject, action=action, since=since, until=until, after_id=after_id, limit=limit
        ),
    )
    records = [
        AuditRecordView(**{**dataclasses.asdict(row), "prev_hash": row.prev_hash.hex(), "hash": row.hash.hex()})
        for row in rows
    ]
    return AuditPage(records=records, next_after_id=records[-1].id if len(records) == limit else None)
