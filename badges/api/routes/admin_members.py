"""`GET /v1/admin/members/{member_id}/workflows`: links into the Temporal Web UI for one member's
workflows, by the member's internal id (`BADGES_TEMPORAL_UI_URL`, the namespace from settings).
The UI shows their payloads only through the audited codec endpoint."""

from __future__ import annotations

import uuid
from urllib.parse import quote, urlencode

from fastapi import APIRouter

from badges.api.deps import ServicesDep, SettingsDep, StaffPrincipal
from badges.api.problems import Problem
from badges.api.schemas import MemberWorkflowsView, WorkflowLinkView
from badges.config import Settings
from badges.db.banking import member_connection_ids
from badges.db.members import member_timezone
from badges.domain.identity import (
    bank_sync_workflow_id,
    behaviour_workflow_id,
    consent_workflow_id,
    erasure_workflow_id,
    export_workflow_id,
    member_workflows_prefix,
    user_badges_workflow_id,
)

router = APIRouter(tags=["admin"])


def workflows_url(settings: Settings, query: str) -> str:
    """The Web UI's workflow list filtered by a visibility query."""
    base = settings.temporal_ui_url.rstrip("/")
    return f"{base}/namespaces/{quote(settings.temporal_namespace, safe='')}/workflows?{urlencode({'query': query})}"


@router.get("/v1/admin/members/{member_id}/workflows", response_model=MemberWorkflowsView)
async def member_workflows(
    member_id: uuid.UUID, principal: StaffPrincipal, services: ServicesDep, settings: SettingsDep
) -> MemberWorkflowsView:
    """The member's workflows (badges, behaviour, consent, export, erasure, one sync per bank
    connection), each linked to its runs in the Web UI; 404 for an id that is no member's."""
    if await member_timezone(services.engine, member_id) is None:
        raise Problem(404, "unknown-member", f"No member has the internal id {member_id}.")
    ids = [
        ("badges", user_badges_workflow_id(member_id)),
        ("behaviour", behaviour_workflow_id(member_id)),
        ("consent", consent_workflow_id(member_id)),
        ("export", export_workflow_id(member_id)),
        ("erasure", erasure_workflow_id(member_id)),
        *[("bank sync", bank_sync_workflow_id(c)) for c in await member_connection_ids(services.pool, member_id)],
    ]
    return MemberWorkflowsView(
        member_id=member_id,
        temporal_ui_url=settings.temporal_ui_url,
        namespace=settings.temporal_namespace,
        all_workflows_url=workflows_url(settings, f'WorkflowId STARTS_WITH "{member_workflows_prefix(member_id)}"'),
        workflows=[
            WorkflowLinkView(
                kind=kind, workflow_id=workflow_id, url=workflows_url(settings, f'WorkflowId="{workflow_id}"')
            )
            for kind, workflow_id in ids
        ],
    )
