"""`POST /v1/admin/peer-stats/releases`: an admin runs a release of peer statistics now (the
Schedule checks daily whether one is due). The answer says whether it was released, with its privacy
loss and the number of groups published, or refused by the privacy budget, with the reason."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Response

from badges.api.deps import AdminPrincipal, ServicesDep, SettingsDep
from badges.api.intake import temporal_or_503
from badges.domain.wire import WireModel
from badges.temporal import run_peer_release

router = APIRouter(tags=["admin"])


class PeerRelease(WireModel):
    release_id: uuid.UUID
    status: Literal["released", "refused", "empty", "not_due"]
    reason: str | None = None
    epsilon: float
    delta: float
    groups: int


@router.post(
    "/v1/admin/peer-stats/releases",
    response_model=PeerRelease,
    status_code=201,
    responses={409: {"model": PeerRelease, "description": "Refused (the privacy budget) or nothing to release"}},
)
async def release_peer_stats(
    principal: AdminPrincipal, services: ServicesDep, settings: SettingsDep, response: Response
) -> PeerRelease:
    """Run a release of peer statistics and wait for it: 201 with its privacy loss when released;
    409 with the reason when the privacy budget refuses it or there is nothing to release."""
    # Admins only (AdminPrincipal): it spends the members' privacy budget.
    with temporal_or_503("The release cannot be started right now; retry shortly."):
        outcome = await run_peer_release(services.temporal, settings)
    if outcome.status != "released":
        response.status_code = 409
    return PeerRelease.model_validate(outcome.model_dump())
