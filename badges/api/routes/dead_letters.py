"""`GET /v1/admin/dead-letters`: work members' workflows could not apply and set aside, for
operators (any staff scope; every read audited by the staff dependency), oldest first, paged."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from badges.api.deps import ServicesDep, StaffPrincipal
from badges.api.schemas import MAX_ROW_ID, DeadLetterPage, DeadLetterView
from badges.db.dead_letters import dead_letters

router = APIRouter(tags=["admin"])


@router.get("/v1/admin/dead-letters", response_model=DeadLetterPage)
async def list_dead_letters(
    principal: StaffPrincipal,
    services: ServicesDep,
    user: uuid.UUID | None = None,
    after_id: Annotated[int, Query(alias="afterId", ge=0, le=MAX_ROW_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeadLetterPage:
    """The payloads stay sealed with the member's key; each record says what failed and which
    events (or review item) it held."""
    rows = await dead_letters(services.engine, user_id=user, after_id=after_id, limit=limit)
    views = [
        DeadLetterView(
            id=row.id,
            user_id=row.user_id,
            kind=row.kind,  # type: ignore[arg-type]
            reason=row.reason,
            event_ids=row.event_ids,
            review_id=row.review_id,
            created_at=row.created_at,
        )
        for row in rows
    ]
    return DeadLetterPage(dead_letters=views, next_after_id=views[-1].id if len(views) == limit else None)
