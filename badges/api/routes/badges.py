"""`GET /v1/badges` (the catalogue in force) and `GET /v1/me/badges` (the member's progress and awards)."""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter

from badges.api.deps import MemberId, MemberPrincipal, ServicesDep
from badges.api.schemas import AwardView, BadgeProgressView, BadgeView, CatalogueView, MyBadges
from badges.db.progress import member_badges
from badges.domain.definitions import BadgeDefinition, StreakRule, TiersRule

router = APIRouter(tags=["badges"])


def headline_target(badge: BadgeDefinition) -> int | None:
    """What progress counts towards: the count, streak length or top tier; None for badges
    decided on bank data over a period rather than counted."""
    rule = badge.rule
    if isinstance(rule, StreakRule):
        return rule.length
    if isinstance(rule, TiersRule):
        return rule.tiers[-1].target
    return getattr(rule, "target", None)


def badge_view(badge: BadgeDefinition) -> BadgeView:
    return BadgeView(
        badge_id=badge.badge_id,
        name=badge.name,
        description=badge.description,
        kind=badge.rule.kind,
        version=badge.version,
        target=headline_target(badge),
        tiers=[tier.name for tier in badge.rule.tiers] if isinstance(badge.rule, TiersRule) else None,
        reward=badge.reward.model_dump(mode="json", by_alias=True) if badge.reward else None,
    )


@router.get("/v1/badges", response_model=CatalogueView)
async def catalogue(principal: MemberPrincipal, services: ServicesDep) -> CatalogueView:
    revision, badges = await services.catalogue.current()
    return CatalogueView(revision=revision, badges=[badge_view(badge) for badge in badges if badge.active])


@router.get("/v1/me/badges", response_model=MyBadges)
async def my_badges(member_id: MemberId, services: ServicesDep) -> MyBadges:
    _, badges = await services.catalogue.current()
    progress_rows, award_rows = await member_badges(services.engine, member_id)
    progress = {row.badge_id: row for row in progress_rows}
    awards: dict[str, list[AwardView]] = defaultdict(list)
    for row in award_rows:
        awards[row.badge_id].append(AwardView(instance=row.instance, version=row.version, awarded_at=row.awarded_at))
    views = []
    for badge in badges:
        if not badge.active and badge.badge_id not in awards:
            continue
        mine = progress.get(badge.badge_id)
        held = awards.get(badge.badge_id, [])
        views.append(
            BadgeProgressView(
                **badge_view(badge).model_dump(),
                progress=mine.value if mine else 0,
                progress_target=mine.target if mine else headline_target(badge),
                awarded=bool(held),
                awarded_at=held[0].awarded_at if held else None,
                awards=held,
            )
        )
    return MyBadges(user_id=member_id, badges=views)
