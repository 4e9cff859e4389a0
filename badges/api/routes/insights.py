"""`GET /v1/me/dashboard` and `GET /v1/me/financial-profile`: what the member's behaviour
evaluation found, as the dashboard page and the seed's `FinancialProfile` read it (the dashboard
with the member's goals and their progress, as `GET /v1/me/goals` shows them).

Both need active `behaviour_tracking` consent (403 `consent-required`); every read is audited. The
figures come from the member's newest evaluation (`member_insights`, sealed with their key), made
after each sync that changed their bank data and at each window close: `computedAt` says when.
Before the first one, the answer says so (`status: "waiting"`) rather than failing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter

from badges.api.deps import MemberId, ServicesDep, audit_member_access
from badges.api.problems import Problem
from badges.api.routes.badges import my_badges
from badges.api.routes.goals import GoalView, goal_views
from badges.db.consents import has_consent
from badges.db.goals import member_goals
from badges.db.insights import member_insights
from badges.domain.wire import WireModel

router = APIRouter(tags=["insights"])
BANK_DATA_KINDS = {"milestone", "avoidance", "improvement", "sustained", "buffer", "goal", "comparative"}


class BadgeInReach(WireModel):
    badge_id: str
    name: str
    progress: int
    progress_target: int | None


class Dashboard(WireModel):
    status: Literal["ready", "waiting"]
    computed_at: datetime | None = None
    health: dict[str, Any] | None = None
    months: list[dict[str, Any]] = []
    trends: dict[str, list[dict[str, Any]]] = {}
    income: dict[str, Any] | None = None
    recurring: list[dict[str, Any]] = []
    prediction: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    unusual: list[dict[str, Any]] = []
    total_saved_minor: int | None = None
    # Of it, what was put into savings in the last week: savings badges count it once kept a week.
    unsettled_savings_minor: int | None = None
    goals: list[GoalView] = []
    badges_in_reach: list[BadgeInReach] = []


class FinancialProfile(WireModel):
    """The seed's `FinancialProfile`: salary (a typical monthly income), savings rate (the last
    complete month's), spending by category (the last complete month's) and when it was made."""

    salary: int | None
    savings_rate: float | None
    spending_categories: dict[str, int]
    last_updated: datetime | None


async def _insights(member_id: Any, services: Any, resource: str) -> tuple[datetime, dict[str, Any]] | None:
    if not await has_consent(services.pool, member_id, "behaviour_tracking", datetime.now(UTC)):
        raise Problem(
            403,
            "consent-required",
            "Insights need active `behaviour_tracking` consent: grant it with PUT /v1/me/consent.",
        )
    found = await member_insights(services.pool, services.keys, member_id)
    if found is not None:
        await audit_member_access(
            services, member_id, action="read.insights", resource=resource, purpose="the member's own insights"
        )
    return found


@router.get("/v1/me/dashboard", response_model=Dashboard)
async def dashboard(member_id: MemberId, services: ServicesDep) -> Dashboard:
    found = await _insights(member_id, services, "/v1/me/dashboard")
    mine = await my_badges(member_id, services)
    in_reach = [
        BadgeInReach(
            badge_id=badge.badge_id, name=badge.name, progress=badge.progress, progress_target=badge.progress_target
        )
        for badge in mine.badges
        if badge.kind in BANK_DATA_KINDS and not badge.awarded and badge.progress > 0
    ]
    goals = await member_goals(services.pool, services.keys, member_id)
    if found is None:
        return Dashboard(status="waiting", goals=goal_views(goals, None), badges_in_reach=in_reach)
    computed_at, document = found
    return Dashboard(
        status="ready",
        computed_at=computed_at,
        health=document.get("health"),
        months=document.get("months", []),
        trends=document.get("trends", {}),
        income=document.get("income"),
        recurring=document.get("recurring", []),
        prediction=document.get("prediction"),
        quality=document.get("quality"),
        unusual=document.get("unusual", []),
        total_saved_minor=document.get("totalSavedMinor"),
        unsettled_savings_minor=document.get("unsettledSavingsMinor"),
        goals=goal_views(goals, document),
        badges_in_reach=in_reach,
    )


@router.get("/v1/me/financial-profile", response_model=FinancialProfile)
async def financial_profile(member_id: MemberId, services: ServicesDep) -> FinancialProfile:
    found = await _insights(member_id, services, "/v1/me/financial-profile")
    if found is None:
        return FinancialProfile(salary=None, savings_rate=None, spending_categories={}, last_updated=None)
    computed_at, document = found
    complete = [month for month in document.get("months", []) if month.get("complete")]
    last = complete[-1] if complete else None
    income = document.get("income") or {}
    return FinancialProfile(
        salary=income.get("monthlyMedianMinor") or None,
        savings_rate=last.get("savingsRate") if last else None,
        spending_categories=last.get("spendingByCategory", {}) if last else {},
        last_updated=computed_at,
    )
