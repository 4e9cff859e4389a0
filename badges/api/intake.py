"""Event intake: de-duplicate an event by id, then hand it to the member's workflow.

Shared by every surface events arrive on, so each answers duplicates the same way.
"""

from __future__ import annotations

import logging
import uuid
from typing import Literal

from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from badges.api.problems import Problem
from badges.db.receipts import claim_event, mark_signalled
from badges.domain.events import BadgeEvent, RealTimeEvent
from badges.domain.identity import user_badges_workflow_id
from badges.workflows.user_badges import UserBadgesInput, UserBadgesWorkflow

Outcome = Literal["accepted", "duplicate"]
STARTED_CACHE_LIMIT = 100_000
log = logging.getLogger("badges.intake")
TEMPORAL_UNREACHABLE = (RPCError, RuntimeError)


def temporal_unreachable(error: Exception) -> bool:
    """An RPC that failed, or a lazy client that could not connect (the SDK raises a RuntimeError)."""
    return isinstance(error, RPCError) or str(error).startswith("Failed client connect")


class EventIntake:
    def __init__(self, pool: AsyncConnectionPool, temporal: Client, task_queue: str) -> None:
        self._pool = pool
        self._temporal = temporal
        self._task_queue = task_queue
        self._started: set[uuid.UUID] = set()

    async def accept(self, member_id: uuid.UUID, event: RealTimeEvent) -> Outcome:
        claim = await claim_event(self._pool, member_id, event.id)
        if not claim.new and claim.already_signalled:
            return "duplicate"
        # A receipt not yet marked as signalled means an earlier attempt never reached Temporal
        # (or never recorded that it did): hand it over again; the workflow drops repeats by id.
        await self.signal(member_id, BadgeEvent.from_wire(event))
        await mark_signalled(self._pool, member_id, event.id)
        return "accepted"

    async def start_ahead(self, member_id: uuid.UUID) -> None:
        """Start the member's workflow before their first event (when they open a stream, say),
        so that first event does not also pay for starting it. Best effort: signal-with-start
        still starts it on the first event if this fails."""
        if member_id in self._started:
            return
        try:
            await self._temporal.start_workflow(
                UserBadgesWorkflow.run,
                UserBadgesInput(user_id=member_id),
                id=user_badges_workflow_id(member_id),
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
        except TEMPORAL_UNREACHABLE as error:
            if not temporal_unreachable(error):
                raise
            log.warning("could not start a member workflow ahead of events", exc_info=True)
            return
        if len(self._started) >= STARTED_CACHE_LIMIT:
            self._started.clear()
        self._started.add(member_id)

    async def signal(self, member_id: uuid.UUID, event: BadgeEvent) -> None:
        try:
            await self._start_with_signal(member_id, event)
        except TEMPORAL_UNREACHABLE as error:
            if not temporal_unreachable(error):
                raise
            # The receipt stays unmarked, so the client's retry of the same id is handed over.
            raise Problem(
                503, "temporal-unavailable", "Events cannot be accepted right now; retry the same request shortly."
            ) from error

    async def _start_with_signal(self, member_id: uuid.UUID, event: BadgeEvent) -> None:
        await self._temporal.start_workflow(
            UserBadgesWorkflow.run,
            UserBadgesInput(user_id=member_id),
            id=user_badges_workflow_id(member_id),
            task_queue=self._task_queue,
            start_signal="record_event",
            start_signal_args=[event],
        )
