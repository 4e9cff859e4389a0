"""`GET /v1/me`: who the caller is to us (their internal id, never their token subject)."""

from __future__ import annotations

from fastapi import APIRouter

from badges.api.deps import MemberId, MemberPrincipal, ServicesDep
from badges.api.schemas import Me, Profile

router = APIRouter(tags=["me"])


@router.get("/v1/me", response_model=Me)
async def me(principal: MemberPrincipal, member_id: MemberId, services: ServicesDep) -> Me:
    await services.intake.start_ahead(member_id)
    return Me(user_id=member_id, scopes=sorted(principal.scopes))


@router.get("/v1/me/profile", response_model=Profile)
async def get_profile(member_id: MemberId, services: ServicesDep) -> Profile:
    return Profile(timezone=await services.members.timezone(member_id))


@router.put("/v1/me/profile", response_model=Profile)
async def put_profile(profile: Profile, member_id: MemberId, services: ServicesDep) -> Profile:
    """The member's time zone decides their calendar day for streak badges, from their next event."""
    await services.members.set_timezone(member_id, profile.timezone)
    return profile
