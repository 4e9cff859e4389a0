"""Activities of the re-evaluation after a badge changes: find the members with progress on it,
and signal each one's workflow to re-check that progress.

A page may name a member who is erased before (or while) it is signalled: the page was read
before the erasure. Such a member is skipped, never signalled: a signal-with-start would start a
new workflow for them (sealed with a key this process still caches), which then fails its
writes forever, and the key's absence would fail the page on every retry.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from badges.activities.erasure import end_workflows_of_erased
from badges.config import Settings
from badges.db import progress
from badges.db.keys import KeyStore, KeyUnavailableError
from badges.db.members import reachable_members
from badges.messages.reevaluation import MemberPage, ReevaluationSignals
from badges.messages.user_badges import ReevaluationRequest
from badges.temporal import Client, request_reevaluation


class ReevaluationActivities:
    def __init__(self, engine: AsyncEngine, temporal: Client, settings: Settings, keys: KeyStore) -> None:
        self._engine = engine
        self._temporal = temporal
        self._settings = settings
        self._keys = keys

    @activity.defn
    async def members_with_progress(self, badge_id: str, after: uuid.UUID | None, limit: int) -> MemberPage:
        return MemberPage(member_ids=await progress.members_with_progress(self._engine, badge_id, after, limit))

    @activity.defn
    async def signal_reevaluation(self, signals: ReevaluationSignals) -> None:
        """Signal each member of the page, in order, heartbeating the position of the last one
        signalled: a retry resumes after it, so a failure never re-signals the members before it.
        Erased members (and members whose erasure has begun) are skipped."""
        request = ReevaluationRequest(badge_ids=[signals.badge_id], catalogue_revision=signals.catalogue_revision)
        details = activity.info().heartbeat_details
        start = int(details[0]) + 1 if details else 0
        pending = signals.member_ids[start:]
        # Read now, past every cache: a member erased since the page was read is not signalled.
        reachable = await reachable_members(self._engine, pending)
        signalled: list[uuid.UUID] = []
        for n, member_id in enumerate(pending, start):
            if member_id in reachable and await self._signal(member_id, request):
                signalled.append(member_id)
            else:
                self._keys.forget(str(member_id))  # never seal anything with a destroyed key
            activity.heartbeat(n)
        # An erasure that began while the page was signalled may have missed a workflow started
        # here (its sweeps ran before the start): end it, it could never write anything. With
        # the members an earlier attempt reached, which it may not have checked before failing.
        await end_workflows_of_erased(
            self._engine, self._temporal, self._keys, {*signals.member_ids[:start], *signalled}
        )

    async def _signal(self, member_id: uuid.UUID, request: ReevaluationRequest) -> bool:
        """Signal (or start) the member's workflow. False when the member's key is gone: erased
        since the check."""
        try:
            # A member whose workflow has ended (or never ran here) gets one.
            await request_reevaluation(self._temporal, self._settings, member_id, request)
        except KeyUnavailableError:
            return False
        return True
