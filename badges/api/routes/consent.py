"""`GET/PUT /v1/me/consent`: a member's consents, read from the projection and changed through
their `ConsentWorkflow` (202: the workflow applies the change)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from badges.api.deps import MemberId, ServicesDep, SettingsDep
from badges.api.intake import temporal_or_503
from badges.api.problems import Problem
from badges.api.schemas import WireModel
from badges.db.consents import member_consents
from badges.domain.consent import ConsentGrant, ConsentState, Scope, grant
from badges.messages.consent import GrantOrRevocation
from badges.temporal import change_consent

router = APIRouter(tags=["consent"])

APPLY_WAIT_SECONDS = 5.0


class ScopeRequest(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    purpose: str = Field(min_length=1, max_length=500)
    # With a time zone (e.g. 2027-01-31T00:00:00Z): an expiry without one means nothing exact.
    expires_at: AwareDatetime


class ConsentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: dict[Scope, ScopeRequest | None]


class ScopeView(WireModel):
    purpose: str
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    status: Literal["active", "revoked", "expired"]


class ConsentView(WireModel):
    scopes: dict[Scope, ScopeView]


class ConsentAccepted(WireModel):
    """The change as asked for; the member's ConsentWorkflow applies it (watch the stream or GET)."""

    scopes: dict[Scope, ScopeRequest | None]


@router.get("/v1/me/consent", response_model=ConsentView)
async def get_consent(member_id: MemberId, services: ServicesDep) -> ConsentView:
    now = datetime.now(UTC)
    scopes: dict[Scope, ScopeView] = {}
    for row in await member_consents(services.pool, member_id):
        status = "revoked" if row.revoked_at is not None else ("active" if row.expires_at > now else "expired")
        scopes[row.scope] = ScopeView(
            purpose=row.purpose,
            granted_at=row.granted_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            status=status,
        )
    return ConsentView(scopes=scopes)


@router.put("/v1/me/consent", status_code=202, response_model=ConsentAccepted)
async def put_consent(
    body: ConsentRequest, member_id: MemberId, services: ServicesDep, settings: SettingsDep
) -> ConsentAccepted:
    now = datetime.now(UTC)
    changes: list[GrantOrRevocation] = []
    for scope, request in body.scopes.items():
        if request is None:
            changes.append(scope)
            continue
        wanted = ConsentGrant(scope=scope, purpose=request.purpose, expires_at=request.expires_at)
        try:
            grant(ConsentState(), wanted, now)
        except ValueError as error:
            field, _, message = str(error).partition(": ")
            raise Problem(
                422,
                "validation-failed",
                "The request is not valid.",
                errors=[{"field": f"body.scopes.{scope}.{field}", "message": message}],
            ) from error
        changes.append(wanted)
    # The workflow answers once it has recorded the changes, so that a client that goes on to use
    # a scope it just granted is not refused. Waited for briefly: the answer is 202 either way,
    # and a workflow that is slow to apply them (no worker yet) still applies them.
    if changes:
        with temporal_or_503("Consent cannot be changed right now; retry shortly."):
            await change_consent(services.temporal, settings, member_id, changes, wait=APPLY_WAIT_SECONDS)
    return ConsentAccepted(scopes=body.scopes)
