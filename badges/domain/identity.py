"""Workflow ids for members and the owner of the data key each workflow's payloads use."""

from __future__ import annotations

import uuid

SERVICE_OWNER = "service"


def user_badges_workflow_id(user_id: uuid.UUID | str) -> str:
    return f"user/{user_id}/badges"


def key_owner_for_workflow(workflow_id: str | None) -> str:
    """The member whose key protects a workflow's payloads, or the service key's owner.

    Member workflows are named `user/{uuid}/...`; anything else uses the service key, and so
    does the member's erasure, which must still run (and replay) after their key is destroyed.
    Its history holds nothing personal: the member's id and the steps.
    """
    if workflow_id:
        parts = workflow_id.split("/")
        if len(parts) >= 3 and parts[0] == "user" and parts[2:] != ["erasure"]:
            try:
                return str(uuid.UUID(parts[1]))
            except ValueError:
                pass
    return SERVICE_OWNER


def webhook_delivery_workflow_id(user_id: uuid.UUID | str, badge_id: str, instance: str) -> str:
    """One delivery workflow per award; under `user/{uid}/` so its payloads use the member's key."""
    return f"user/{user_id}/webhook/{badge_id}/{instance}"


def behaviour_workflow_id(user_id: uuid.UUID | str) -> str:
    return f"user/{user_id}/behaviour"


def consent_workflow_id(user_id: uuid.UUID | str) -> str:
    return f"user/{user_id}/consent"


def erasure_workflow_id(user_id: uuid.UUID | str) -> str:
    return f"user/{user_id}/erasure"


def erasure_reference(run_id: str) -> uuid.UUID:
    """The name of an erasure in the audit log: derived from its workflow run, so the API and
    the workflow (and two concurrent requests joining one run) name it alike, and nothing of
    the member is in it."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"badges:erasure:{run_id}")


def export_workflow_id(user_id: uuid.UUID | str) -> str:
    return f"user/{user_id}/export"


def member_workflows_prefix(user_id: uuid.UUID | str) -> str:
    """Every workflow of a member has an id that starts with this."""
    return f"user/{user_id}/"


def bank_sync_workflow_id(connection_id: uuid.UUID | str) -> str:
    """Not under `user/...`: its payloads (ids and counts) use the service key, and the erasure
    ends it through the member's connections."""
    return f"bank/{connection_id}/sync"


def reevaluation_workflow_id(badge_id: str, version: int) -> str:
    """One re-evaluation per badge version: asking twice does the work once."""
    return f"catalogue/reevaluate/{badge_id}/v{version}"
