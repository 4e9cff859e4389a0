"""`GET /v1/admin/metrics`: programme figures for operators and compliance staff."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select

from badges.api.deps import ServicesDep, StaffPrincipal
from badges.api.routes.rewards import budget_views
from badges.api.schemas import ProgrammeMetrics
from badges.db.badges import Award
from badges.db.events import EventReceipt
from badges.db.members import Member
from badges.db.outbox import OutboxEntry
from badges.db.reviews import pending_reviews
from badges.db.rewards import ledger_totals

router = APIRouter(tags=["admin"])


@router.get("/v1/admin/metrics", response_model=ProgrammeMetrics)
async def metrics(principal: StaffPrincipal, services: ServicesDep) -> ProgrammeMetrics:
    async with services.engine.connect() as connection:
        members = await connection.scalar(select(func.count()).select_from(Member))
        events = await connection.scalar(select(func.count()).select_from(EventReceipt))
        awards = await connection.execute(select(Award.badge_id, func.count()).group_by(Award.badge_id))
        last_outbox_id = await connection.scalar(select(func.coalesce(func.max(OutboxEntry.id), 0)))
        awards_by_badge = {badge_id: count for badge_id, count in awards}
    return ProgrammeMetrics(
        members=members or 0,
        events_accepted=events or 0,
        awards_by_badge=awards_by_badge,
        last_outbox_id=last_outbox_id or 0,
        stream_subscribers=services.hub.subscriber_count,
        rewards_by_status=await ledger_totals(services.engine),
        reward_budgets=await budget_views(services),
        reviews_pending=await pending_reviews(services.engine),
    )
