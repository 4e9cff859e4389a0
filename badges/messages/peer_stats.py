"""What crosses Temporal for a peer-statistics release (PeerStatsReleaseWorkflow)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class PeerReleaseRequest(BaseModel):
    """Who asked: the Schedule (`schedule`, the default: paced, it releases only when the yearly
    budget has accrued enough) or an admin (`operator`: refused only by the budget's limits)."""

    requested_by: Literal["schedule", "operator"] = "schedule"


class ContactsReleaseOutcome(BaseModel):
    """A contacts release (docs/api/peers.md, "Contacts"): `released` (its ledger entry; `groups` published,
    `suppressed` not), `refused` (the budget: `reason`), `futile` (no group could be published at
    this budget: nothing measured, nothing spent; `reason`) or `empty` (nobody has contacts)."""

    release_id: uuid.UUID
    status: Literal["released", "refused", "futile", "empty"]
    reason: str | None = None
    epsilon: float = 0.0
    groups: int = 0
    suppressed: int = 0


class PeerReleaseOutcome(BaseModel):
    release_id: uuid.UUID
    # `released`; `refused` (the budget: `reason` says why); `empty` (no consenting member);
    # `not_due` (a scheduled run before the budget has accrued enough: nothing recorded,
    # `next_due` says when it will have).
    status: Literal["released", "refused", "empty", "not_due"]
    reason: str | None = None
    epsilon: float = 0.0
    delta: float = 0.0
    groups: int = 0
    # The contacts release run after it (its own ledger entry); None: not run.
    contacts: ContactsReleaseOutcome | None = None
    next_due: datetime | None = None
