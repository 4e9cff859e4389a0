"""Event intake: de-duplicate an event by id, then hand it to the member's workflow.

Shared by every surface events arrive on, so each answers duplicates the same way.
"""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from badges.db.events import EventReceipt
from badges.domain.events import BadgeEvent, RealTimeEvent
from badges.domain.identity import user_badges_workflow_id
from badges.workflows.user_badges import UserBadgesInput, UserBadgesWorkflow

Outcome = Literal["accepted", "duplicate"]


class EventIntake:
    def __init__(self, engine: AsyncEngine, temporal: Client, task_queue: str) -> None:
        self._engine = engine
        self._temporal = temporal
        self._task_queue = task_queue

    async def accept(self, member_id: uuid.UUID, event: RealTimeEvent) -> Outcome:
        async with self._engine.begin() as connection:
            inserted = await connection.scalar(
                insert(EventReceipt)
                .values(user_id=member_id, event_id=event.id)
                .on_conflict_do_nothing()
                .returning(EventReceipt.event_id)
            )
            if inserted is None:
                signalled_at = await connection.scalar(
                    select(EventReceipt.signalled_at).where(
                        EventReceipt.user_id == member_id, EventReceipt.event_id == event.id
                    )
                )
                if signalled_at is not None:
                    return "duplicate"
        # A receipt without `signalled_at` means an earlier attempt never reached Temporal (or
        # never recorded that it did): hand it over (again); the workflow drops repeats by id.
        await self.signal(member_id, BadgeEvent.from_wire(event))
        async with self._engine.begin() as connection:
            await connection.execute(
                update(EventReceipt)
                .where(EventReceipt.user_id == member_id, EventReceipt.event_id == event.id)
                .values(signalled_at=func.now())
            )
        return "accepted"

    async def signal(self, member_id: uuid.UUID, event: BadgeEvent) -> None:
        await self._temporal.start_workflow(
            UserBadgesWorkflow.run,
            UserBadgesInput(user_id=member_id),
            id=user_badges_workflow_id(member_id),
            task_queue=self._task_queue,
            start_signal="record_event",
            start_signal_args=[event],
        )
