"""The review queue (`GET /v1/admin/review-queue`): bursts of events held back from awarding, and
financial patterns in members' bank data that would earn a savings badge for money not saved; a
reviewer's decision on each. A held burst's decision goes to the member's badge workflow, which
applies (approved) or drops (rejected) its events; a financial pattern's is recorded at once and
read by the member's next behaviour evaluation, which it asks for: approved counts the money,
rejected keeps it out."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from badges.api.deps import ServicesDep, SettingsDep, StaffPrincipal, audit_staff_read_of_member
from badges.api.intake import TEMPORAL_UNREACHABLE, temporal_unreachable
from badges.api.problems import Problem
from badges.api.schemas import ReviewDecisionRequest, ReviewItemView
from badges.db.consents import has_consent
from badges.db.reviews import FINANCIAL, ReviewRecord, decide_pattern, pattern_detail, review_item, review_items
from badges.messages.behaviour import DataChanged
from badges.messages.user_badges import ReviewDecision
from badges.temporal import behaviour_data_changed, resolve_review

router = APIRouter(tags=["admin"])
log = logging.getLogger("badges.reviews")


def view(item: ReviewRecord, detail: dict[str, Any] | None = None) -> ReviewItemView:
    return ReviewItemView(
        review_id=item.review_id,
        user_id=item.user_id,
        kind="financial" if item.kind == FINANCIAL else "held_burst",
        event_type=item.event_type,
        reason=item.reason,
        event_count=item.event_count,
        event_ids=[str(event_id) for event_id in item.event_ids],
        status=item.status,
        created_at=item.created_at,
        resolved_at=item.resolved_at,
        resolved_by=item.resolved_by,
        detail=detail,
    )


@router.get("/v1/admin/review-queue", response_model=list[ReviewItemView])
async def review_queue(
    principal: StaffPrincipal,
    services: ServicesDep,
    status: Annotated[Literal["pending", "approved", "rejected"] | None, Query()] = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    user: Annotated[uuid.UUID | None, Query(description="only this member's items (their internal id)")] = None,
) -> list[ReviewItemView]:
    """Oldest first; `user` narrows the queue to one member's items. A financial pattern's
    details are not opened here: ask for the item by its id."""
    return [view(item) for item in await review_items(services.engine, status, limit, user)]


@router.get("/v1/admin/review-queue/{review_id}", response_model=ReviewItemView)
async def review(review_id: str, request: Request, principal: StaffPrincipal, services: ServicesDep) -> ReviewItemView:
    """One item (a financial pattern with its details opened), the read audited as of the member
    whose item it is."""
    item = await review_item(services.engine, review_id)
    if item is None:
        raise Problem(404, "unknown-review", f"No review item {review_id!r}.")
    await audit_staff_read_of_member(request, principal, item.user_id)
    return view(item, await pattern_detail(services.keys, item))


@router.post("/v1/admin/review-queue/{review_id}/decision", response_model=ReviewItemView, status_code=202)
async def decide(
    review_id: str,
    decision: ReviewDecisionRequest,
    principal: StaffPrincipal,
    services: ServicesDep,
    settings: SettingsDep,
) -> ReviewItemView:
    """Approve or reject. A held burst: approved, its events count, as of now; rejected, they
    never count; the member's workflow applies the decision and records it (the signal names the
    item, however many events it holds: the workflow loads them in pages). A financial pattern:
    approved (not suspicious), the money counts as the ordinary rules count it; rejected
    (confirmed), it stays out; recorded at once, applied by the member's next evaluation, which
    this asks for. Deciding twice changes nothing (409)."""
    principal.require("operator", "admin")
    item = await review_item(services.engine, review_id)
    if item is None:
        raise Problem(404, "unknown-review", f"No review item {review_id!r}.")
    if item.status != "pending":
        raise Problem(409, "already-decided", f"Review {review_id!r} was already {item.status}.")
    if item.kind == FINANCIAL:
        return await _decide_pattern(item, decision.approve, principal.subject, services, settings)
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


async def _decide_pattern(
    item: ReviewRecord, approved: bool, reviewer: str, services: ServicesDep, settings: SettingsDep
) -> ReviewItemView:
    decided = await decide_pattern(services.engine, item.review_id, approved, reviewer)
    if decided is None:  # another reviewer's decision came first
        raise Problem(409, "already-decided", f"Review {item.review_id!r} was already decided.")
    if await has_consent(services.pool, item.user_id, "behaviour_tracking", datetime.now(UTC)):
        try:
            await behaviour_data_changed(services.temporal, settings, item.user_id, DataChanged(reason="review"))
        except TEMPORAL_UNREACHABLE as error:
            if not temporal_unreachable(error):
                raise
            # The decision is kept: the member's next sync or window close applies it.
            log.warning("review %s decided; the evaluation could not be asked for: %s", item.review_id, error)
    return view(decided)
