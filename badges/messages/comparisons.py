"""What crosses Temporal for comparative badges: the verdicts a peer-statistics release hands a
member's badge workflow (`comparative` signal), those it could not record (`record_dropped_awards`),
and the award step's outcome."""

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


class DroppedAward(BaseModel):
    badge_id: str
    reason: str


class DroppedAwards(BaseModel):
    """A release's verdicts that a member's badge workflow could not record, and why (the badge
    changed after the release decided), for the release's record of its awards (`peer_awards`)."""

    user_id: uuid.UUID
    release_id: uuid.UUID
    dropped: list[DroppedAward]


class ComparativeAwardsOutcome(BaseModel):
    release_id: uuid.UUID
    members: int = 0  # members who cleared a target in this release
    sent: int = 0  # handed to their badge workflows by this run of the step
    # Not handed over by this run: the member withdrew `peer_comparison` consent or began their
    # erasure after the release decided.
    dropped: int = 0
