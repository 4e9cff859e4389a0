"""Rewards: a member's ledger (`GET /v1/me/rewards`), budgets for admins, and releasing deferred
rewards when a new month's budget has room."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path

from badges.api.deps import AdminPrincipal, MemberId, ServicesDep, StaffPrincipal, audit_member_access
from badges.api.schemas import BudgetSpec, BudgetView, MyRewards, RewardView
from badges.db.rewards import budget_period, budget_state, member_rewards, release_deferred, set_budget

router = APIRouter(tags=["rewards"])

ScopePath = Annotated[
    str, Path(pattern=r"^(\*|[a-z0-9][a-z0-9_\-]{0,63})$", description="a badge id, or * for the whole programme")
]


@router.get("/v1/me/rewards", response_model=MyRewards)
async def my_rewards(member_id: MemberId, services: ServicesDep) -> MyRewards:
    entries = await member_rewards(services.engine, member_id)
    # The member's own read of financial data is audited too (who, whose, what, why).
    await audit_member_access(
        services, member_id, action="read.rewards", resource="/v1/me/rewards", details={"entries": len(entries)}
    )
    money: dict[str, int] = {}
    for entry in entries:
        if entry.kind == "money" and entry.status == "granted":
            money[entry.currency] = money.get(entry.currency, 0) + entry.amount
    return MyRewards(
        rewards=[
            RewardView(
                badge_id=entry.badge_id,
                instance=entry.instance,
                version=entry.version,
                kind=entry.kind,  # type: ignore[arg-type]
                amount=entry.amount,
                currency=entry.currency or None,
                status=entry.status,  # type: ignore[arg-type]
                period=entry.period,
                reason=entry.reason,
                created_at=entry.created_at,
                granted_at=entry.granted_at,
            )
            for entry in entries
        ],
        points_granted=sum(e.amount for e in entries if e.kind == "points" and e.status == "granted"),
        money_granted_minor=money,
        pending=sum(1 for e in entries if e.status == "deferred"),
    )


async def budget_views(services: ServicesDep) -> list[BudgetView]:
    period = budget_period(datetime.now(UTC))
    return [
        BudgetView(
            scope=budget.scope,
            kind=budget.kind,
            currency=budget.currency or None,
            monthly_limit=budget.monthly_limit,
            policy=budget.policy,
            period=period,
            used=budget.used,
            remaining=max(0, budget.monthly_limit - budget.used),
        )
        for budget in await budget_state(services.engine, period)
    ]


@router.get("/v1/admin/reward-budgets", response_model=list[BudgetView])
async def list_budgets(principal: StaffPrincipal, services: ServicesDep) -> list[BudgetView]:
    return await budget_views(services)


@router.put("/v1/admin/reward-budgets/{scope}", response_model=list[BudgetView])
async def put_budget(
    scope: ScopePath, spec: BudgetSpec, principal: AdminPrincipal, services: ServicesDep
) -> list[BudgetView]:
    """Set the monthly cap for one badge's rewards (or, with `*`, all rewards) of one kind."""
    await set_budget(services.engine, scope, spec.kind, spec.currency or "", spec.monthly_limit, spec.policy)
    return await budget_views(services)


@router.post("/v1/admin/rewards/release-deferred")
async def release(principal: AdminPrincipal, services: ServicesDep) -> dict[str, int]:
    """Grant deferred rewards, oldest first, while this month's budgets have room."""
    return {"granted": await release_deferred(services.pool, datetime.now(UTC))}
