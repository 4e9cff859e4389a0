"""Activities of the re-evaluation after a badge changes: find the members with progress on it,
and signal each one's workflow to re-check that progress."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from badges.config import Settings
from badges.db import progress
from badges.messages.reevaluation import MemberPage, ReevaluationSignals
from badges.messages.user_badges import ReevaluationRequest
from badges.temporal import Client, request_reevaluation


class ReevaluationActivities:
    def __init__(self, engine: AsyncEngine, temporal: Client, settings: Settings) -> None:
        self._engine = engine
        self._temporal = temporal
        self._settings = settings

    @activity.defn
    async def members_with_progress(self, badge_id: str, after: uuid.UUID | None, limit: int) -> MemberPage:
        return MemberPage(member_ids=await progress.members_with_progress(self._engine, badge_id, after, limit))

    @activity.defn
    async def signal_reevaluation(self, signals: ReevaluationSignals) -> None:
        request = ReevaluationRequest(badge_ids=[signals.badge_id], catalogue_revision=signals.catalogue_revision)
        for n, member_id in enumerate(signals.member_ids):
            # A member whose workflow has ended (or never ran here) gets one.
            await request_reevaluation(self._temporal, self._settings, member_id, request)
            activity.heartbeat(n)
