"""`GET/PUT /v1/me/consent`: a member's consents, read from the projection and changed through
their `ConsentWorkflow` (202: the workflow applies the change)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from badges.api.deps import MemberId, ServicesDep
from badges.api.intake import temporal_or_503
from badges.api.problems import Problem
from badges.domain.consent import ConsentGrant, ConsentState, Scope, grant
from badges.domain.identity import consent_workflow_id
from badges.workflows.consent import ConsentInput, ConsentWorkflow

router = APIRouter(tags=["consent"])


class ScopeRequest(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    purpose: str = Field(min_length=1, max_length=500)
    expires_at: datetime


class ConsentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: dict[Scope, ScopeRequest | None]


@router.get("/v1/me/consent")
async def get_consent(member_id: MemberId, services: ServicesDep) -> dict[str, Any]:
    now = datetime.now(UTC)
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT scope, purpose, granted_at, expires_at, revoked_at FROM consents WHERE user_id = %s ORDER BY scope",
            (member_id,),
        )
        rows = await cur.fetchall()
    scopes: dict[str, Any] = {}
    for scope, purpose, granted_at, expires_at, revoked_at in rows:
        status = "revoked" if revoked_at is not None else ("active" if expires_at > now else "expired")
        scopes[scope] = {
            "purpose": purpose,
            "grantedAt": granted_at.isoformat(),
            "expiresAt": expires_at.isoformat(),
            "status": status,
        }
    return {"scopes": scopes}


@router.put("/v1/me/consent", status_code=202)
async def put_consent(body: ConsentRequest, member_id: MemberId, services: ServicesDep) -> dict[str, Any]:
    now = datetime.now(UTC)
    changes: list[tuple[str, Any]] = []
    for scope, request in body.scopes.items():
        if request is None:
            changes.append(("revoke", scope))
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
        changes.append(("grant", wanted))
    with temporal_or_503("Consent cannot be changed right now; retry shortly."):
        for signal, argument in changes:
            await services.temporal.start_workflow(
                ConsentWorkflow.run,
                ConsentInput(user_id=member_id),
                id=consent_workflow_id(member_id),
                task_queue=services.intake.task_queue,
                start_signal=signal,
                start_signal_args=[argument],
            )
    return body.model_dump(mode="json", by_alias=True)
