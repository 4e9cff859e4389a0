"""Award webhooks as data: what is POSTed to a badge's webhook URL, its delivery id, and which
receiver answers are worth retrying. (What crosses Temporal for a delivery is in
`badges.messages.webhook_delivery`.)"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from badges.domain.definitions import MoneyReward, PointsReward

AuthenticationMethod = Literal["token", "signature"]
DELIVERY_HEADER = "X-Badges-Delivery"
# Deliveries of one award always get the same id, so receivers can drop repeats.
DELIVERY_NAMESPACE = uuid.UUID("5f0c8f1e-4a57-4d53-9c61-0b1a7e2d9a44")
# 4xx answers that mean "not now" rather than "never": timeout, conflict, too early, too many.
RETRYABLE_CLIENT_ERRORS: frozenset[int] = frozenset({408, 409, 425, 429})


def award_delivery_id(user_id: uuid.UUID, badge_id: str, instance: str) -> str:
    """A stable id for the delivery of one award: a UUID derived from (member, badge, instance)."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{user_id}/{badge_id}/{instance}"))


def award_webhook_body(
    delivery_id: str,
    user_id: uuid.UUID,
    badge_id: str,
    instance: str,
    version: int,
    awarded_at: datetime,
    reward: PointsReward | MoneyReward | None,
) -> dict[str, Any]:
    """The JSON document a badge's webhook receives for one award (camelCase, as the API speaks)."""
    return {
        "type": "award",
        "deliveryId": delivery_id,
        "memberId": str(user_id),
        "badgeId": badge_id,
        "instance": instance,
        "version": version,
        "awardedAt": awarded_at.isoformat(),
        "reward": None if reward is None else reward.model_dump(mode="json", by_alias=True),
    }


def delivered(status_code: int) -> bool:
    return 200 <= status_code < 300


def worth_retrying(status_code: int) -> bool:
    """Whether a non-2xx answer may succeed later: 5xx and a few 4xx do, other 4xx never will."""
    return not 400 <= status_code < 500 or status_code in RETRYABLE_CLIENT_ERRORS
