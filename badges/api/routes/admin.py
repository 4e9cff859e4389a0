"""`GET /v1/admin/metrics`: programme figures for operators and compliance staff."""

from __future__ import annotations

from fastapi import APIRouter

from badges.api.deps import ServicesDep, StaffPrincipal
from badges.api.routes.rewards import budget_views
from badges.api.schemas import ProgrammeMetrics
from badges.db.dead_letters import dead_letter_count
from badges.db.metrics import programme_counts
from badges.db.reviews import pending_reviews
from badges.db.rewards import ledger_totals

router = APIRouter(tags=["admin"])


@router.get("/v1/admin/metrics", response_model=ProgrammeMetrics)
async def metrics(principal: StaffPrincipal, services: ServicesDep) -> ProgrammeMetrics:
    counts = await programme_counts(services.engine)
    return ProgrammeMetrics(
        members=counts.members,
        events_accepted=counts.events_accepted,
        awards_by_badge=counts.awards_by_badge,
        last_outbox_id=counts.last_outbox_id,
        stream_subscribers=services.hub.subscriber_count,
        rewards_by_status=await ledger_totals(services.engine),
        reward_budgets=await budget_views(services),
        reviews_pending=await pending_reviews(services.engine),
        dead_letters=await dead_letter_count(services.engine),
    )
