"""`GET /v1/me`: who the caller is to us (their internal id, never their token subject);
`GET/PUT /v1/me/profile`: their time zone and, with `demographics` consent, their demographics."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from badges.api.deps import MemberId, MemberPrincipal, ServicesDep, audit_member_access
from badges.api.problems import Problem
from badges.api.schemas import Demographics, Me, Profile, ProfileUpdate
from badges.db.consents import has_consent
from badges.db.members import load_demographics, save_demographics

router = APIRouter(tags=["me"])


@router.get("/v1/me", response_model=Me)
async def me(principal: MemberPrincipal, member_id: MemberId, services: ServicesDep) -> Me:
    await services.intake.start_ahead(member_id)
    return Me(user_id=member_id, scopes=sorted(principal.scopes))


@router.get("/v1/me/profile", response_model=Profile)
async def get_profile(member_id: MemberId, services: ServicesDep) -> Profile:
    demographics = None
    if await has_consent(services.pool, member_id, "demographics", datetime.now(UTC)):
        stored = await load_demographics(services.engine, services.keys, member_id)
        if stored is not None:
            demographics = Demographics.model_validate(stored)
            await audit_member_access(
                services,
                member_id,
                action="read.demographics",
                resource="/v1/me/profile",
                purpose="the member's own profile",
            )
    return Profile(timezone=await services.members.timezone(member_id), demographics=demographics)


@router.put("/v1/me/profile", response_model=Profile)
async def put_profile(update: ProfileUpdate, member_id: MemberId, services: ServicesDep) -> Profile:
    """The time zone decides the member's calendar day for streak badges, from their next event.
    Demographics need active `demographics` consent (403 otherwise); `null` deletes them, and so
    does revoking that consent or letting it expire."""
    if "demographics" in update.model_fields_set:
        wanted = update.demographics.model_dump(mode="json", exclude_none=True) if update.demographics else None
        if not await save_demographics(services.engine, services.keys, member_id, wanted):
            raise Problem(
                403,
                "consent-required",
                "Demographics are held only with active `demographics` consent: grant it with PUT /v1/me/consent.",
            )
    if update.timezone is not None:
        await services.members.set_timezone(member_id, update.timezone)
    return await get_profile(member_id, services)
