"""Routes for local use only (BADGES_ENV=dev; 404 otherwise): `POST /v1/dev/token` (bearer tokens),
and Link at the local sandbox bank for the dashboard (`/v1/dev/sandbox/...`), standing in for the
provider's own Link widget, which the page cannot load from anywhere else."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import Field

from badges.api.auth import MAX_STAFF_SUBJECT_LENGTH, STAFF_SCOPES, TOKEN_TTL_SECONDS, issue_token
from badges.api.deps import MemberPrincipal, SettingsDep, limit_source_address
from badges.api.problems import Problem
from badges.api.routes.bank import provider_problem
from badges.api.schemas import TokenRequest, TokenResponse
from badges.banking.provider import ProviderError
from badges.banking.sandbox_link import SANDBOX_PERSONAS, SandboxLink
from badges.config import Settings
from badges.domain.wire import WireModel

router = APIRouter(tags=["dev"])

PersonaName = Literal[tuple(SANDBOX_PERSONAS)]  # type: ignore[valid-type]


def require_dev(settings: Settings) -> None:
    if settings.badges_env != "dev":
        raise Problem(404, "not-found", "Not Found")


@router.post("/v1/dev/token", response_model=TokenResponse)
async def create_dev_token(body: TokenRequest, settings: SettingsDep, request: Request) -> TokenResponse:
    require_dev(settings)
    await limit_source_address(request)
    if not body.sub.strip():
        detail = "sub must not be empty"
        raise Problem(422, "validation-failed", detail, errors=[{"field": "body.sub", "message": detail}])
    if STAFF_SCOPES.intersection(body.scopes) and len(body.sub) > MAX_STAFF_SUBJECT_LENGTH:
        detail = f"a staff sub is at most {MAX_STAFF_SUBJECT_LENGTH} characters long"
        raise Problem(422, "validation-failed", detail, errors=[{"field": "body.sub", "message": detail}])
    token = issue_token(settings, body.sub, list(body.scopes))
    return TokenResponse(access_token=token, expires_in=TOKEN_TTL_SECONDS)


class SandboxPersona(WireModel):
    username: str
    description: str


class SandboxPersonas(WireModel):
    personas: list[SandboxPersona]


class SandboxLinkRequest(WireModel):
    link_token: str = Field(min_length=1, max_length=512, description="From POST /v1/me/bank/link-token")
    username: PersonaName = Field(description="Whose bank history the sandbox generates")


class SandboxLinkView(WireModel):
    public_token: str = Field(description="For POST /v1/me/bank/connections, as Plaid Link's onSuccess gives it")


@router.get("/v1/dev/sandbox/personas", response_model=SandboxPersonas)
async def sandbox_personas(principal: MemberPrincipal, settings: SettingsDep) -> SandboxPersonas:
    """The people the local sandbox bank can be, to link as."""
    require_dev(settings)
    return SandboxPersonas(
        personas=[SandboxPersona(username=name, description=text) for name, text in SANDBOX_PERSONAS.items()]
    )


@router.post("/v1/dev/sandbox/link", response_model=SandboxLinkView)
async def complete_sandbox_link(
    body: SandboxLinkRequest, principal: MemberPrincipal, settings: SettingsDep
) -> SandboxLinkView:
    """Finish Link at the sandbox bank (PLAID_HOST) for a link token from POST /v1/me/bank/link-token
    (in update mode too): the public token to post to POST /v1/me/bank/connections. The sandbox's
    credentials stay on the server."""
    require_dev(settings)
    link = SandboxLink(settings.plaid_host, settings.plaid_client_id, settings.plaid_secret)
    try:
        public_token = await link.complete(body.link_token, body.username)
    except ProviderError as error:
        raise provider_problem(error) from error
    return SandboxLinkView(public_token=public_token)
