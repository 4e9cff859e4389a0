"""FastAPI dependencies: the services built at start-up, the current principal, the member."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from badges.api.auth import STAFF_SCOPES, Principal, verify_token
from badges.api.hub import OutboxHub
from badges.api.intake import EventIntake
from badges.api.members import MemberDirectory
from badges.api.problems import Problem
from badges.config import Settings


@dataclass
class Services:
    engine: AsyncEngine
    pool: AsyncConnectionPool
    temporal: Client
    members: MemberDirectory
    intake: EventIntake
    hub: OutboxHub


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


bearer = HTTPBearer(auto_error=False, description="A JWT from your identity provider (or /v1/dev/token).")


def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None:
        raise Problem(401, "missing-token", "Send a bearer token in the Authorization header.")
    return verify_token(request.app.state.settings, credentials.credentials)


def get_member_principal(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    principal.require("user")
    return principal


def get_staff_principal(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    principal.require(*sorted(STAFF_SCOPES))
    return principal


async def get_member_id(
    principal: Annotated[Principal, Depends(get_member_principal)],
    services: Annotated[Services, Depends(get_services)],
) -> uuid.UUID:
    return await services.members.resolve(principal.subject)


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StaffPrincipal = Annotated[Principal, Depends(get_staff_principal)]
MemberPrincipal = Annotated[Principal, Depends(get_member_principal)]
MemberId = Annotated[uuid.UUID, Depends(get_member_id)]
