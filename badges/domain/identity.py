"""Workflow ids for members and the owner of the data key each workflow's payloads use."""

from __future__ import annotations

import uuid

SERVICE_OWNER = "service"


def user_badges_workflow_id(user_id: uuid.UUID | str) -> str:
    return f"user/{user_id}/badges"


def key_owner_for_workflow(workflow_id: str | None) -> str:
    """The member whose key protects a workflow's payloads, or the service key's owner.

    Member workflows are named `user/{uuid}/...`; anything else uses the service key.
    """
    if workflow_id:
        parts = workflow_id.split("/")
        if len(parts) >= 3 and parts[0] == "user":
            try:
                return str(uuid.UUID(parts[1]))
            except ValueError:
                pass
    return SERVICE_OWNER


def webhook_delivery_workflow_id(user_id: uuid.UUID | str, badge_id: str, instance: str) -> str:
    """One delivery workflow per award; under `user/{uid}/` so its payloads use the member's key."""
    return f"user/{user_id}/webhook/{badge_id}/{instance}"


def consent_workflow_id(user_id: uuid.UUID | str) -> str:
    return f"user/{user_id}/consent"
