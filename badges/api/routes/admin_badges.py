"""Badge definitions for admins: `PUT /v1/admin/badges/{badge_id}` appends a version; for staff the
catalogue with inactive badges, the version history, and the explicit re-evaluation of members'
in-flight progress under a new version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from badges.api.deps import AdminPrincipal, ServicesDep, SettingsDep, StaffPrincipal
from badges.api.problems import Problem
from badges.api.routes.badges import badge_view
from badges.api.schemas import (
    BadgeVersionView,
    DefinitionSaved,
    ReevaluationView,
    StaffBadgeView,
    StaffCatalogueView,
    WebhookSecretView,
)
from badges.db.catalogue import definition_versions
from badges.db.webhooks import ensure_badge_webhook_secret, rotate_badge_webhook_secret
from badges.domain.definitions import BadgeSpec
from badges.domain.identity import reevaluation_workflow_id
from badges.messages.reevaluation import ReevaluationInput
from badges.temporal import reevaluation_progress, start_reevaluation

router = APIRouter(tags=["admin"])

BadgeIdPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$", description="e.g. weekly-regular")]


@router.put(
    "/v1/admin/badges/{badge_id}",
    response_model=DefinitionSaved,
    status_code=201,
    responses={200: {"model": DefinitionSaved, "description": "The newest version already says exactly this."}},
)
async def put_badge(
    badge_id: BadgeIdPath, spec: BadgeSpec, principal: AdminPrincipal, services: ServicesDep
) -> JSONResponse:
    definition, created = await services.catalogue.save(badge_id, spec, principal.subject)
    webhook_secret = None
    if created and spec.config.web_socket is not None and spec.config.web_socket.webhook_url is not None:
        webhook_secret = await ensure_badge_webhook_secret(services.engine, services.keys, badge_id)
    saved = DefinitionSaved(
        badge_id=badge_id,
        version=definition.version,
        created=created,
        definition=definition.model_dump(mode="json", by_alias=True),
        webhook_secret=webhook_secret,
    )
    return JSONResponse(saved.model_dump(mode="json", exclude_none=True), status_code=201 if created else 200)


@router.get("/v1/admin/badges", response_model=StaffCatalogueView)
async def staff_catalogue(principal: StaffPrincipal, services: ServicesDep) -> StaffCatalogueView:
    """Every badge at its newest version, inactive ones too (`GET /v1/badges` shows members the
    active ones); its versions: `GET /v1/admin/badges/{badge_id}/versions`."""
    revision, badges = await services.catalogue.current()
    return StaffCatalogueView(
        revision=revision,
        badges=[StaffBadgeView(**badge_view(badge).model_dump(), active=badge.active) for badge in badges],
    )


@router.get("/v1/admin/badges/{badge_id}/versions", response_model=list[BadgeVersionView])
async def badge_versions(
    badge_id: BadgeIdPath, principal: StaffPrincipal, services: ServicesDep
) -> list[BadgeVersionView]:
    versions = await definition_versions(services.engine, badge_id)
    if not versions:
        raise Problem(404, "unknown-badge", f"No badge {badge_id!r} has been defined.")
    return [
        BadgeVersionView(
            version=version.definition.version,
            created_by=version.created_by,
            created_at=version.created_at,
            definition=version.definition.model_dump(mode="json", by_alias=True),
        )
        for version in versions
    ]


async def _reevaluation_view(services: ServicesDep, workflow_id: str, badge_id: str, version: int) -> ReevaluationView:
    found = await reevaluation_progress(services.temporal, workflow_id)
    if found is None:
        raise Problem(
            404, "reevaluation-not-found", f"No re-evaluation of {badge_id!r} version {version} has been started."
        )
    status, progress = found
    return ReevaluationView(
        workflow_id=workflow_id,
        badge_id=badge_id,
        version=version,
        status=status,
        members_signalled=progress.members_signalled if progress else 0,
        done=progress.done if progress else False,
    )


@router.post("/v1/admin/badges/{badge_id}/reevaluate", response_model=ReevaluationView, status_code=202)
async def reevaluate(
    badge_id: BadgeIdPath, principal: AdminPrincipal, services: ServicesDep, settings: SettingsDep
) -> ReevaluationView:
    """Re-check every member with progress on this badge against its newest version: anything
    now earned is awarded. Idempotent: once per version; asking again answers the same run."""
    revision, badges = await services.catalogue.current()
    definition = next((badge for badge in badges if badge.badge_id == badge_id), None)
    if definition is None:
        raise Problem(404, "unknown-badge", f"No badge {badge_id!r} has been defined.")
    workflow_id = reevaluation_workflow_id(badge_id, definition.version)
    # Done before for this version: answer with that run (one that failed may run again).
    await start_reevaluation(
        services.temporal,
        settings,
        workflow_id,
        ReevaluationInput(badge_id=badge_id, version=definition.version, catalogue_revision=revision),
    )
    return await _reevaluation_view(services, workflow_id, badge_id, definition.version)


@router.get("/v1/admin/badges/{badge_id}/reevaluations/{version}", response_model=ReevaluationView)
async def reevaluation_status(
    badge_id: BadgeIdPath,
    version: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: StaffPrincipal,
    services: ServicesDep,
) -> ReevaluationView:
    return await _reevaluation_view(services, reevaluation_workflow_id(badge_id, version), badge_id, version)


@router.post("/v1/admin/badges/{badge_id}/webhook-secret", response_model=WebhookSecretView, status_code=201)
async def new_webhook_secret(
    badge_id: BadgeIdPath, principal: AdminPrincipal, services: ServicesDep
) -> WebhookSecretView:
    """A new signing secret for this badge's award webhooks, shown once; the old one stops working.
    Also how a badge defined in the catalogue file, or whose first secret was lost, gets one."""
    versions = await definition_versions(services.engine, badge_id)
    if not versions:
        raise Problem(404, "unknown-badge", f"No badge {badge_id!r} has been defined.")
    secret = await rotate_badge_webhook_secret(services.engine, services.keys, badge_id)
    return WebhookSecretView(badge_id=badge_id, webhook_secret=secret)
