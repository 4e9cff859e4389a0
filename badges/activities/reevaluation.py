"""Activities of the re-evaluation after a badge changes: find the members with progress on it,
and signal each one's workflow to re-check that progress."""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client

from badges.db.progress import members_with_progress


class MemberPage(BaseModel):
    member_ids: list[uuid.UUID]


class ReevaluationSignals(BaseModel):
    member_ids: list[uuid.UUID]
    badge_id: str
    catalogue_revision: int


class ReevaluationRequest(BaseModel):
    """What a member's workflow receives: re-check these badges under at least this revision."""

    badge_ids: list[str]
    catalogue_revision: int


class ReevaluationActivities:
    def __init__(self, engine: AsyncEngine, temporal: Client, task_queue: str) -> None:
        self._engine = engine
        self._temporal = temporal
        self._task_queue = task_queue

    @activity.defn
    async def members_with_progress(self, badge_id: str, after: uuid.UUID | None, limit: int) -> MemberPage:
        return MemberPage(member_ids=await members_with_progress(self._engine, badge_id, after, limit))

    @activity.defn
    async def signal_reevaluation(self, signals: ReevaluationSignals) -> None:
        # Imported here: the member workflow module imports this one's models.
        from badges.workflows.user_badges import signal_member

        request = ReevaluationRequest(badge_ids=[signals.badge_id], catalogue_revision=signals.catalogue_revision)
        for n, member_id in enumerate(signals.member_ids):
            # A member whose workflow has ended (or never ran here) gets one.
            await signal_member(self._temporal, member_id, self._task_queue, "reevaluate", request)
            activity.heartbeat(n)
