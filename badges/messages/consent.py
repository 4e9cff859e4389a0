"""What crosses Temporal around `ConsentWorkflow`: its input, the change a caller asks for (an
Update that answers once the change is recorded) and the `record_consent` activity's argument."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from badges.domain.consent import ConsentGrant, ConsentState

# A grant, or the scope a revocation ends.
GrantOrRevocation = ConsentGrant | str


class ConsentInput(BaseModel):
    user_id: uuid.UUID
    state: ConsentState = Field(default_factory=ConsentState)
    pending: list[GrantOrRevocation] = Field(default_factory=list)
    # The ids of the latest change requests, so one that arrives twice (as an update and as the
    # signal sent when the update was not answered in time) is applied once across continue-as-new.
    recent_requests: list[str] = Field(default_factory=list)


class ConsentChanges(BaseModel):
    """Grants and revocations asked for together (one `PUT /v1/me/consent`), applied in order.

    `request_id` names the request: sent both as the `change` update and as the `apply_changes`
    signal, it is applied once."""

    changes: list[GrantOrRevocation]
    request_id: str | None = None


class ConsentChange(BaseModel):
    user_id: uuid.UUID
    scope: str
    status: Literal["granted", "revoked", "expired", "expiring"]
    purpose: str
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
