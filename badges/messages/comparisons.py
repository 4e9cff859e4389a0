"""What crosses Temporal for comparative badges: the verdicts a peer-statistics release hands a
member's badge workflow (`comparative` signal), and the award step's outcome."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from badges.domain.financial import Verdict


class ComparativeResults(BaseModel):
    """A release's comparative-badge verdicts for one member. Each earned instance names its
    release (`p95-<release id>`), so the badge workflow records it once however often it is sent."""

    release_id: uuid.UUID
    verdicts: list[Verdict]
    catalogue_revision: int = 0  # the catalogue the verdicts were decided under


class ComparativeAwardsOutcome(BaseModel):
    release_id: uuid.UUID
    members: int = 0  # members who cleared a target in this release
    sent: int = 0  # handed to their badge workflows by this run of the step
