"""The review queue: bursts of events held back from awarding (`GET /v1/admin/review-queue`),
and a reviewer's decision, which the member's workflow applies (approved) or drops (rejected)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from badges.api.deps import ServicesDep, StaffPrincipal
from badges.api.intake import TEMPORAL_UNREACHABLE, temporal_unreachable
from badges.api.problems import Problem
from badges.api.schemas import ReviewDecisionRequest, ReviewItemView
from badges.db.reviews import ReviewRecord, review_item, review_items
from badges.messages.user_badges import ReviewDecision
from badges.temporal import resolve_review

router = APIRouter(tags=["admin"])


def view(item: ReviewRecord) -> ReviewItemView:
    return ReviewItemView(
        review_id=item.review_id,
        user_id=item.user_id,
        event_type=item.event_type,
        reason=item.reason,
        event_count=item.event_count,
        event_ids=[str(event_id) for event_id in item.event_ids],
        status=item.status,
        created_at=item.created_at,
        resolved_at=item.resolved_at,
        resolved_by=item.resolved_by,
    )


@router.get("/v1/admin/review-queue", response_model=list[ReviewItemView])
async def review_queue(
    principal: StaffPrincipal,
    services: ServicesDep,
    status: Annotated[Literal["pending", "approved", "rejected"] | None, Query()] = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    user: Annotated[uuid.UUID | None, Query(description="only this member's items (their internal id)")] = None,
) -> list[ReviewItemView]:
    """Oldest first; `user` narrows the queue to one member's held bursts."""
    return [view(item) for item in await review_items(services.engine, status, limit, user)]


@router.post("/v1/admin/review-queue/{review_id}/decision", response_model=ReviewItemView, status_code=202)
async def decide(
    review_id: str, decision: ReviewDecisionRequest, principal: StaffPrincipal, services: ServicesDep
) -> ReviewItemView:
    """Approve (the held events count, as of now) or reject (they never count). The member's
    workflow applies the decision and records it; deciding twice changes nothing. The signal
    names the item, however many events it holds: the workflow loads them in pages."""
    principal.require("operator", "admin")
    item = await review_item(services.engine, review_id)
    if item is None:
        raise Problem(404, "unknown-review", f"No review item {review_id!r}.")
    if item.status != "pending":
        raise Problem(409, "already-decided", f"Review {review_id!r} was already {item.status}.")
    try:
        await resolve_review(
            services.temporal,
            item.user_id,
            ReviewDecision(review_id=review_id, approved=decision.approve, resolved_by=principal.subject),
        )
    except TEMPORAL_UNREACHABLE as error:
        if not temporal_unreachable(error):
            raise
        raise Problem(503, "temporal-unavailable", "The decision could not be delivered; retry shortly.") from error
    return view(item)
