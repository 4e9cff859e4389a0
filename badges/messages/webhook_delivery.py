"""What crosses Temporal around `WebhookDeliveryWorkflow`: one award's delivery (its input, built
by `award_webhook`), an attempt's outcome, a failure to record and the workflow's result."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from badges.domain.definitions import BadgeDefinition
from badges.domain.webhooks import AuthenticationMethod, award_delivery_id, award_webhook_body


class WebhookDeliveryInput(BaseModel):
    """One award to POST to one URL, and how long to keep trying."""

    delivery_id: str
    user_id: uuid.UUID
    badge_id: str
    instance: str
    version: int
    url: str
    authentication_method: AuthenticationMethod
    # The JSON document POSTed, as `award_webhook_body` builds it.
    body: dict[str, Any]
    initial_retry_interval: timedelta = timedelta(seconds=5)
    maximum_retry_interval: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(hours=24)  # the activity's schedule-to-close timeout


class WebhookAttempt(BaseModel):
    """What one delivery attempt achieved (only delivered attempts return; others raise)."""

    status_code: int
    attempt: int


class WebhookFailure(BaseModel):
    """A delivery given up on, and why."""

    delivery_id: str
    user_id: uuid.UUID
    badge_id: str
    url: str
    error: str


class WebhookDeliveryResult(BaseModel):
    status: Literal["delivered", "failed"]
    status_code: int | None = None
    attempts: int | None = None
    error: str | None = None


def award_webhook(
    user_id: uuid.UUID, definition: BadgeDefinition, instance: str, awarded_at: datetime
) -> WebhookDeliveryInput | None:
    """The delivery of one award of `definition`, or None when the badge names no webhook URL."""
    config = definition.config.web_socket
    if config is None or config.webhook_url is None:
        return None
    delivery_id = award_delivery_id(user_id, definition.badge_id, instance)
    return WebhookDeliveryInput(
        delivery_id=delivery_id,
        user_id=user_id,
        badge_id=definition.badge_id,
        instance=instance,
        version=definition.version,
        url=str(config.webhook_url),
        authentication_method=config.authentication_method,
        body=award_webhook_body(
            delivery_id, user_id, definition.badge_id, instance, definition.version, awarded_at, definition.reward
        ),
    )
