"""`GET /v1/badges` (the catalogue) and `GET /v1/me/badges` (the member's progress and awards)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from badges.api.deps import MemberId, MemberPrincipal, ServicesDep
from badges.api.schemas import BadgeProgressView, BadgeView, Catalogue, MyBadges
from badges.db.badges import Award, BadgeProgress
from badges.domain.catalogue import DEFAULT_CATALOGUE

router = APIRouter(tags=["badges"])


@router.get("/v1/badges", response_model=Catalogue)
async def catalogue(principal: MemberPrincipal) -> Catalogue:
    return Catalogue(
        badges=[
            BadgeView(badge_id=b.badge_id, name=b.name, description=b.description, target=b.rule.target)
            for b in DEFAULT_CATALOGUE
        ]
    )


@router.get("/v1/me/badges", response_model=MyBadges)
async def my_badges(member_id: MemberId, services: ServicesDep) -> MyBadges:
    async with services.engine.connect() as connection:
        progress = {
            row.badge_id: row.value
            for row in await connection.execute(
                select(BadgeProgress.badge_id, BadgeProgress.value).where(BadgeProgress.user_id == member_id)
            )
        }
        awarded = {
            row.badge_id: row.awarded_at
            for row in await connection.execute(
                select(Award.badge_id, Award.awarded_at).where(Award.user_id == member_id)
            )
        }
    return MyBadges(
        user_id=member_id,
        badges=[
            BadgeProgressView(
                badge_id=b.badge_id,
                name=b.name,
                description=b.description,
                target=b.rule.target,
                progress=progress.get(b.badge_id, 0),
                awarded=b.badge_id in awarded,
                awarded_at=awarded.get(b.badge_id),
            )
            for b in DEFAULT_CATALOGUE
        ],
    )
