"""`GET /v1/me`: who the caller is to us (their internal id, never their token subject)."""

from __future__ import annotations

from fastapi import APIRouter

from badges.api.deps import MemberId, MemberPrincipal, ServicesDep
from badges.api.schemas import Me

router = APIRouter(tags=["me"])


@router.get("/v1/me", response_model=Me)
async def me(principal: MemberPrincipal, member_id: MemberId, services: ServicesDep) -> Me:
    await services.intake.start_ahead(member_id)
    return Me(user_id=member_id, scopes=sorted(principal.scopes))
