"""UserBadgesWorkflow (`user/{uid}/badges`): a member's real-time events become progress and awards.

Signals only queue work; the run loop takes everything queued since the last workflow task as
one batch: it loads a newer badge catalogue if the events were accepted under one, holds back
implausible bursts for review, applies reviewers' decisions and admins' re-evaluations (what the
batch decides is `domain/batch.py`'s), and writes the outcome with one local activity. It lives
as long as the member, continuing as new when Temporal suggests it, with its state, catalogue
and unprocessed work carried forward.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from badges.domain.batch import decide_batch
    from badges.domain.catalogue import LEGACY_CATALOGUE
    from badges.domain.definitions import BadgeDefinition
    from badges.domain.events import BadgeEvent
    from badges.domain.financial import apply_verdicts
    from badges.domain.identity import webhook_delivery_workflow_id
    from badges.domain.plausibility import ARRIVAL_LIMITS, DEFAULT_LIMITS
    from badges.domain.rules import Award
    from badges.messages.behaviour import FinancialResults
    from badges.messages.user_badges import (
        BadgeSnapshot,
        CatalogueSnapshot,
        HeldReview,
        ProgressBatch,
        ReevaluationRequest,
        ReviewDecision,
        UserBadgesInput,
    )
    from badges.messages.webhook_delivery import award_webhook

# A workflow module: imported inside the sandbox where the sandbox imports this one (the tests').
from badges.workflows.webhook_delivery import WebhookDeliveryWorkflow

# A database outage must not lose a batch: the write retries until it lands.
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
LEGACY = CatalogueSnapshot(revision=0, badges=list(LEGACY_CATALOGUE))


# Outside the sandbox: this is the hot path (one workflow task per event), and the sandbox cost
# 1.8 of the worker's 6.4 ms of CPU per event at 100 events/s (bench/RESULTS.md). Its code
# is still checked in the sandbox: the workflow tests and replay tests run it there
# (`sandbox_everything` in badges/workers/main.py), so a non-deterministic call fails CI.
@workflow.defn(sandboxed=False)
class UserBadgesWorkflow:
    @workflow.init
    def __init__(self, input: UserBadgesInput) -> None:
        self._state = input.state
        self._pending: list[BadgeEvent] = list(input.pending)
        self._reevaluations: list[ReevaluationRequest] = list(input.reevaluations)
        self._decisions: list[ReviewDecision] = list(input.decisions)
        self._catalogue = input.catalogue or LEGACY
        self._financial: list[FinancialResults] = list(input.financial)

    @workflow.run
    async def run(self, input: UserBadgesInput) -> None:
        while True:
            await workflow.wait_condition(lambda: self._has_work() or workflow.info().is_continue_as_new_suggested())
            if self._financial:
                await self._apply_financial(input.user_id)
            if self._pending or self._reevaluations or self._decisions:
                await self._apply_pending(input.user_id)
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    UserBadgesInput(
                        user_id=input.user_id,
                        state=self._state,
                        pending=self._pending,
                        reevaluations=self._reevaluations,
                        decisions=self._decisions,
                        catalogue=self._catalogue,
                        financial=self._financial,
                    )
                )

    def _has_work(self) -> bool:
        return bool(self._pending or self._reevaluations or self._decisions or self._financial)

    async def _apply_pending(self, user_id: uuid.UUID) -> None:
        events, self._pending = self._pending, []
        reevaluations, self._reevaluations = self._reevaluations, []
        decisions, self._decisions = self._decisions, []

        wanted = max(
            [event.catalogue_revision for event in events] + [r.catalogue_revision for r in reevaluations],
            default=0,
        )
        if wanted > self._catalogue.revision:
            self._catalogue = await workflow.execute_local_activity(
                "load_catalogue",
                result_type=CatalogueSnapshot,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RECORD_RETRY,
            )
        catalogue = self._catalogue.badges
        now = workflow.now()
        # Back-dated events are screened since this patch; histories from before replay without it.
        limits = DEFAULT_LIMITS if workflow.patched("screen-back-dated-events") else ARRIVAL_LIMITS
        outcome = decide_batch(
            self._state, events, decisions, reevaluations, catalogue, now, lambda _: str(workflow.uuid4()), limits
        )
        if outcome.to_record:
            await workflow.execute_local_activity(
                "record_progress",
                ProgressBatch(
                    user_id=user_id,
                    batch_seq=outcome.state.batch_seq,
                    progress=outcome.progress,
                    awards=outcome.awards,
                    held=[
                        HeldReview(
                            review_id=held.review_id, event_type=held.event_type, reason=held.reason, events=held.events
                        )
                        for held in outcome.reviews
                    ],
                    resolved=outcome.resolved,
                    decided_at=now,
                ),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RECORD_RETRY,
            )
        self._state = outcome.state
        await self._deliver_webhooks(user_id, outcome.awards, catalogue)

    async def _apply_financial(self, user_id: uuid.UUID) -> None:
        """Record behaviour evaluations (bank-data badges), oldest first: progress and each award
        once, as this workflow is the one writer of the member's progress rows."""
        results, self._financial = sorted(self._financial, key=lambda r: r.seq), []
        wanted = max(result.catalogue_revision for result in results)
        if wanted > self._catalogue.revision:
            self._catalogue = await workflow.execute_local_activity(
                "load_catalogue",
                result_type=CatalogueSnapshot,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RECORD_RETRY,
            )
        catalogue = self._catalogue.badges
        for result in results:
            now = workflow.now()
            outcome = apply_verdicts(self._state, result.verdicts, catalogue, result.seq, now)
            if outcome.changed:
                await workflow.execute_local_activity(
                    "record_progress",
                    ProgressBatch(
                        user_id=user_id,
                        batch_seq=outcome.state.batch_seq,
                        progress=outcome.progress,
                        awards=outcome.awards,
                        decided_at=now,
                    ),
                    start_to_close_timeout=timedelta(seconds=10),
                    retry_policy=RECORD_RETRY,
                )
            self._state = outcome.state
            await self._deliver_webhooks(user_id, outcome.awards, catalogue)

    async def _deliver_webhooks(
        self, user_id: uuid.UUID, awards: list[Award], catalogue: list[BadgeDefinition]
    ) -> None:
        """Each award of a badge with a webhook URL gets its own delivery workflow, abandoned so
        it outlives this run (it retries for up to a day). Started, not awaited to completion."""
        definitions = {badge.badge_id: badge for badge in catalogue}
        for award in awards:
            definition = definitions.get(award.badge_id)
            if definition is None:
                continue
            delivery = award_webhook(user_id, definition, award.instance, award.awarded_at)
            if delivery is None:
                continue
            # Started before for this award (a replayed batch): nothing to do.
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await workflow.start_child_workflow(
                    WebhookDeliveryWorkflow.run,
                    delivery,
                    id=webhook_delivery_workflow_id(user_id, delivery.badge_id, delivery.instance),
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )

    @workflow.signal
    def record_event(self, event: BadgeEvent) -> None:
        self._pending.append(event)

    @workflow.signal
    def reevaluate(self, request: ReevaluationRequest) -> None:
        self._reevaluations.append(request)

    @workflow.signal
    def resolve_review(self, decision: ReviewDecision) -> None:
        self._decisions.append(decision)

    @workflow.signal
    def financial(self, results: FinancialResults) -> None:
        """A behaviour evaluation's verdicts on the member's bank-data badges."""
        self._financial.append(results)

    @workflow.query
    def snapshot(self) -> BadgeSnapshot:
        return BadgeSnapshot(state=self._state, pending=len(self._pending), catalogue_revision=self._catalogue.revision)
