"""Activities of the re-evaluation after a badge changes: find the members with progress on it,
and signal each one's workflow to re-check that progress."""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client

from badges.db.badges import BadgeProgress


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
        query = select(BadgeProgress.user_id).where(BadgeProgress.badge_id == badge_id)
        if after is not None:
            query = query.where(BadgeProgress.user_id > after)
        async with self._engine.connect() as connection:
            rows = await connection.scalars(query.order_by(BadgeProgress.user_id).limit(limit))
            return MemberPage(member_ids=list(rows))

    @activity.defn
    async def signal_reevaluation(self, signals: ReevaluationSignals) -> None:
        # Imported here: the member workflow module imports this one's models.
        from badges.workflows.user_badges import signal_member

        request = ReevaluationRequest(badge_ids=[signals.badge_id], catalogue_revision=signals.catalogue_revision)
        for n, member_id in enumerate(signals.member_ids):
            # A member whose workflow has ended (or never ran here) gets one.
            await signal_member(self._temporal, member_id, self._task_queue, "reevaluate", request)
            activity.heartbeat(n)
