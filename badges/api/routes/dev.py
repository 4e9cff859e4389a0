"""`POST /v1/dev/token`: bearer tokens for local use, only when BADGES_ENV=dev."""

from __future__ import annotations

from fastapi import APIRouter, Request

from badges.api.auth import MAX_STAFF_SUBJECT_LENGTH, STAFF_SCOPES, TOKEN_TTL_SECONDS, issue_token
from badges.api.deps import SettingsDep, limit_source_address
from badges.api.problems import Problem
from badges.api.schemas import TokenRequest, TokenResponse

router = APIRouter(tags=["dev"])


@router.post("/v1/dev/token", response_model=TokenResponse)
async def create_dev_token(body: TokenRequest, settings: SettingsDep, request: Request) -> TokenResponse:
    if settings.badges_env != "dev":
        raise Problem(404, "not-found", "Not Found")
    await limit_source_address(request)
    if not body.sub.strip():
        detail = "sub must not be empty"
        raise Problem(422, "validation-failed", detail, errors=[{"field": "body.sub", "message": detail}])
    if STAFF_SCOPES.intersection(body.scopes) and len(body.sub) > MAX_STAFF_SUBJECT_LENGTH:
        detail = f"a staff sub is at most {MAX_STAFF_SUBJECT_LENGTH} characters long"
        raise Problem(422, "validation-failed", detail, errors=[{"field": "body.sub", "message": detail}])
    token = issue_token(settings, body.sub, list(body.scopes))
    return TokenResponse(access_token=token, expires_in=TOKEN_TTL_SECONDS)
