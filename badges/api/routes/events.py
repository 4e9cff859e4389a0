"""`POST /v1/events`: a member reports a real-time event about themselves."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from badges.api.deps import MemberId, MemberPrincipal, ServicesDep
from badges.api.problems import Problem
from badges.api.schemas import EventAcceptance
from badges.domain.events import RealTimeEvent

router = APIRouter(tags=["events"])


@router.post(
    "/v1/events",
    status_code=202,
    response_model=EventAcceptance,
    responses={200: {"model": EventAcceptance, "description": "An event with this id was already accepted."}},
)
async def post_event(
    event: RealTimeEvent, principal: MemberPrincipal, member_id: MemberId, services: ServicesDep
) -> JSONResponse:
    if event.user_id != principal.subject:
        raise Problem(403, "not-your-event", "A member may post events only for their own userId.")
    outcome = await services.intake.accept(member_id, event, source="member", channel="rest")
    receipt = EventAcceptance(status=outcome, id=event.id)
    return JSONResponse(receipt.model_dump(mode="json"), status_code=202 if outcome == "accepted" else 200)
