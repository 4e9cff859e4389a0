"""UserBadgesWorkflow (`user/{uid}/badges`): a member's real-time events become progress and awards.

Signals only queue events; the run loop evaluates everything queued since the last workflow task
as one batch and writes it with one local activity. It lives as long as the member, continuing
as new when Temporal suggests it, with its state and de-duplication window carried forward.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from badges.activities.progress import ProgressActivities, ProgressBatch
    from badges.domain.catalogue import DEFAULT_CATALOGUE
    from badges.domain.events import BadgeEvent
    from badges.domain.rules import BadgeState, evaluate


class UserBadgesInput(BaseModel):
    user_id: uuid.UUID
    state: BadgeState = Field(default_factory=BadgeState)
    # Events that arrived after the last batch of the previous run.
    pending: list[BadgeEvent] = Field(default_factory=list)


class BadgeSnapshot(BaseModel):
    state: BadgeState
    pending: int


# A database outage must not lose a batch: the write retries until it lands.
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))


@workflow.defn
class UserBadgesWorkflow:
    @workflow.init
    def __init__(self, input: UserBadgesInput) -> None:
        self._state = input.state
        self._pending: list[BadgeEvent] = list(input.pending)

    @workflow.run
    async def run(self, input: UserBadgesInput) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._pending) or workflow.info().is_continue_as_new_suggested())
            if self._pending:
                await self._apply_pending(input.user_id)
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    UserBadgesInput(user_id=input.user_id, state=self._state, pending=self._pending)
                )

    async def _apply_pending(self, user_id: uuid.UUID) -> None:
        batch, self._pending = self._pending, []
        outcome = evaluate(self._state, batch, DEFAULT_CATALOGUE)
        if outcome.changed:
            await workflow.execute_local_activity_method(
                ProgressActivities.record_progress,
                ProgressBatch(
                    user_id=user_id,
                    batch_seq=outcome.state.batch_seq,
                    progress=outcome.progress,
                    awards=outcome.awards,
                ),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RECORD_RETRY,
            )
        self._state = outcome.state

    @workflow.signal
    def record_event(self, event: BadgeEvent) -> None:
        self._pending.append(event)

    @workflow.query
    def snapshot(self) -> BadgeSnapshot:
        return BadgeSnapshot(state=self._state, pending=len(self._pending))
