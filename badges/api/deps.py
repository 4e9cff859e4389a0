"""FastAPI dependencies: the services built at start-up, the current principal, the member."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from badges.api.auth import STAFF_SCOPES, Principal, verify_token
from badges.api.catalogue import CatalogueService
from badges.api.credentials import CredentialService
from badges.api.hub import OutboxHub
from badges.api.intake import EventIntake
from badges.api.integrations import IntegrationService
from badges.api.members import MemberDirectory
from badges.api.metrics import ApiMetrics
from badges.api.problems import Problem
from badges.api.throttle import Throttle, parse_rate, source_address
from badges.banking.provider import BankProvider
from badges.config import Settings
from badges.db.audit import record_audit
from badges.db.audit_reads import MemberReadAudit
from badges.db.keys import KeyStore
from badges.domain.rate_windows import Rate
from badges.temporal import Client


@dataclass
class Services:
    engine: AsyncEngine
    pool: AsyncConnectionPool
    keys: KeyStore
    temporal: Client
    members: MemberDirectory
    catalogue: CatalogueService
    intake: EventIntake
    throttle: Throttle
    hub: OutboxHub
    integrations: IntegrationService
    banking: dict[str, BankProvider]
    read_audit: MemberReadAudit  # members' reads of their own data, appended to the audit chain together
    credentials: CredentialService
    metrics: ApiMetrics


# HTTPConnection, not Request: WebSocket routes take these dependencies too.
# Every dependency is `async def`, though none of these awaits: FastAPI runs a plain `def` one in a
# thread pool, a thread hop per dependency per request that cost about a tenth of the API's CPU
# under load (bench/RESULTS.md).
async def get_services(connection: HTTPConnection) -> Services:
    return connection.app.state.services  # type: ignore[no-any-return]


async def get_settings(connection: HTTPConnection) -> Settings:
    return connection.app.state.settings  # type: ignore[no-any-return]


bearer = HTTPBearer(auto_error=False, description="A JWT from your identity provider (or /v1/dev/token).")


async def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None:
        raise Problem(401, "missing-token", "Send a bearer token in the Authorization header.")
    return verify_token(request.app.state.settings, credentials.credentials)


async def get_member_principal(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    principal.require("user")
    return principal


STAFF_RANK = ("admin", "compliance", "operator")  # highest first: the role an audit record names
# The parameters of `/v1/admin/...` routes, in the path or the query, that hold a member's internal
# id: only these name the member a staff access touches. Other ids (a held burst's review item, an
# integration, a badge) name no member, and an audit record naming one as its subject would
# file a staff access under a member who does not exist, and out of that member's trail.
MEMBER_ID_PARAMETERS = ("user_id", "member_id", "user", "subject")


def staff_role(principal: Principal) -> str:
    return next((scope for scope in STAFF_RANK if scope in principal.scopes), "user")


def named_subject(request: Request) -> uuid.UUID | None:
    """The member a staff access touches, if a member-id parameter (`MEMBER_ID_PARAMETERS`) of
    the route names one, in its path or its query."""
    for name in MEMBER_ID_PARAMETERS:
        value = request.path_params.get(name) or request.query_params.get(name)
        if value is None:
            continue
        try:
            return uuid.UUID(str(value))
        except ValueError:
            continue  # not an id: the route refuses it
    return None


async def audit_staff_access(request: Request, principal: Principal) -> None:
    """One audit record per staff request to `/v1/admin/...` (once, whichever dependency asks)."""
    if not request.url.path.startswith("/v1/admin/") or getattr(request.state, "staff_audited", False):
        return
    request.state.staff_audited = True
    await _record_staff_access(request, principal, f"admin.{request.method}", named_subject(request))


async def audit_staff_read_of_member(request: Request, principal: Principal, member_id: uuid.UUID) -> None:
    """A staff access whose member only the route learns (an item it loaded names them, e.g. a
    review item): a record naming whose data was opened, beside the request's own record."""
    await _record_staff_access(request, principal, f"admin.{request.method}.member-data", member_id)


async def _record_staff_access(request: Request, principal: Principal, action: str, subject: uuid.UUID | None) -> None:
    resource = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    await record_audit(
        request.app.state.services.pool,
        actor=principal.subject,
        actor_role=staff_role(principal),
        action=action,
        subject=subject,
        resource=resource,
        purpose=request.headers.get("x-audit-purpose") or "operations",
    )


# A member's repeated reads of one resource are recorded once per this window (the first read).
MEMBER_READ_AUDIT_WINDOW = Rate(amount=1, period_seconds=60, label="1 per minute")


async def audit_member_access(
    services: Services,
    member_id: uuid.UUID,
    *,
    action: str,
    resource: str,
    purpose: str = "member self-service",
    details: dict[str, Any] | None = None,
) -> None:
    """One audit record of a member reaching their own data (who: the member, whose: theirs), at
    most one a minute for each member, action and resource: a member reading often neither grows
    the audit log nor queues everyone's audit writes behind the audit chain's one lock (and the
    first reads that arrive together are appended in one transaction, `MemberReadAudit`)."""
    window = Throttle.take(
        "member-read-audit", MEMBER_READ_AUDIT_WINDOW, f"{member_id}:{action}:{resource}", time.time(), sliding=False
    )
    await services.read_audit.record(
        window,
        actor="member",
        actor_role="user",
        action=action,
        subject=member_id,
        resource=resource,
        purpose=purpose,
        details=details,
    )


async def limit_source_address(connection: HTTPConnection) -> None:
    """Routes that take no bearer token (webhooks, signed integration events, the dev token) are
    limited per source address (`BADGES_ADDRESS_RATE`), across every API process."""
    settings: Settings = connection.app.state.settings
    services: Services = connection.app.state.services
    await services.throttle.enforce(
        "source-address", parse_rate(settings.address_rate), source_address(connection), "requests from one address"
    )


LimitedBySourceAddress = Depends(limit_source_address)


async def get_staff_principal(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    principal.require(*sorted(STAFF_SCOPES))
    await audit_staff_access(request, principal)
    return principal


# The HttpOnly cookie `POST /codec/session` sets: how the Temporal Web UI, which can send no bearer
# token to an http codec endpoint and has none of its own without UI auth, authenticates a staff member.
CODEC_SESSION_COOKIE = "badges_codec_session"


def codec_origins(settings: Settings) -> frozenset[str]:
    return frozenset(origin.strip() for origin in settings.codec_cors_origins.split(",") if origin.strip())


async def get_codec_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """Staff on `/codec/...`: a bearer token, or else the codec session cookie, which counts only
    on a request from one of the Web UI's origins (`BADGES_CODEC_CORS_ORIGINS`), so no other page
    that a browser holding the cookie visits can use it."""
    settings: Settings = request.app.state.settings
    if credentials is not None:
        principal = verify_token(settings, credentials.credentials)
    else:
        session = request.cookies.get(CODEC_SESSION_COOKIE)
        if not session:
            raise Problem(
                401, "missing-token", "Send a staff bearer token, or open a codec session: POST /codec/session."
            )
        if request.headers.get("origin") not in codec_origins(settings):
            raise Problem(403, "origin-not-allowed", "The codec session cookie counts only from the Web UI's origins.")
        principal = verify_token(settings, session, codec_only=True)  # a codec session token, nothing else
    principal.require(*sorted(STAFF_SCOPES))
    return principal


async def get_admin_principal(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    principal.require("admin")
    await audit_staff_access(request, principal)
    return principal


async def get_compliance_principal(
    request: Request, principal: Annotated[Principal, Depends(get_principal)]
) -> Principal:
    principal.require("compliance", "admin")
    await audit_staff_access(request, principal)
    return principal


async def get_member_id(
    principal: Annotated[Principal, Depends(get_member_principal)],
    services: Annotated[Services, Depends(get_services)],
) -> uuid.UUID:
    return await services.members.resolve(principal.subject)


async def authenticate_member(services: Services, settings: Settings, token: str) -> tuple[Principal, uuid.UUID]:
    """The member behind a bearer token, checked as the dependencies above check it, for a
    connection that carries its token elsewhere than the Authorization header (a WebSocket)."""
    principal = verify_token(settings, token)
    principal.require("user")
    return principal, await services.members.resolve(principal.subject)


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StaffPrincipal = Annotated[Principal, Depends(get_staff_principal)]
CodecPrincipal = Annotated[Principal, Depends(get_codec_principal)]
AdminPrincipal = Annotated[Principal, Depends(get_admin_principal)]
CompliancePrincipal = Annotated[Principal, Depends(get_compliance_principal)]
MemberPrincipal = Annotated[Principal, Depends(get_member_principal)]
MemberId = Annotated[uuid.UUID, Depends(get_member_id)]
