"""UserBadgesWorkflow (`user/{uid}/badges`): a member's real-time events become progress and awards.

Signals only queue work; the run loop takes everything queued since the last workflow task as
one batch: it loads a newer badge catalogue if the events were accepted under one, holds back
implausible bursts for review (in bounded review items), applies reviewers' decisions (loading
the held events a page at a time) and admins' re-evaluations (what the batch decides is
`domain/batch.py`'s), and writes the outcome with one local activity. A batch that cannot be
applied (the database refuses it for good, or the rules cannot evaluate it) is split until what
fails stands alone, and that is set aside as a dead letter: the member's other work goes on. It
lives as long as the member, continuing as new when Temporal suggests it, with its state,
catalogue and unprocessed work carried forward.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, TemporalError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from badges.domain.batch import REVIEW_BOUNDS, Work, decide_batch, set_aside
    from badges.domain.catalogue import LEGACY_CATALOGUE
    from badges.domain.comparative import record_comparative, unrecordable
    from badges.domain.definitions import BadgeDefinition
    from badges.domain.events import BadgeEvent
    from badges.domain.financial import apply_verdicts
    from badges.domain.identity import webhook_delivery_workflow_id
    from badges.domain.plausibility import ARRIVAL_LIMITS, DEFAULT_LIMITS
    from badges.domain.rules import Award, Evaluation
    from badges.messages.behaviour import FinancialResults
    from badges.messages.comparisons import ComparativeResults, DroppedAward, DroppedAwards
    from badges.messages.user_badges import (
        BadgeSnapshot,
        CatalogueSnapshot,
        DeadLetter,
        HeldEventsPage,
        HeldEventsRequest,
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
# A decided review item's events come back in pages this small, far below Temporal's payload
# limit (2 MB) for the local activity result that carries each.
HELD_PAGE_EVENTS = 250
HELD_PAGE_BYTES = 128 * 1024

# Versions of the command sequence (workflow.patched): histories recorded before each change
# replay as they ran. Each is asked only where its change first shows, so a run that replays
# old history never meets one before its new behaviour is wanted.
DEAD_LETTERS = "dead-letters"  # a batch that cannot be applied is bisected and set aside
BOUNDED_REVIEW_ITEMS = "bounded-review-items"  # a burst past an item's bounds opens a new item
PAGED_REVIEW_EVENTS = "paged-review-events"  # a decision's held events are loaded in pages
SCREEN_BACK_DATED = "screen-back-dated-events"  # events stamped long before they arrived are screened
RECORD_DROPPED_AWARDS = "record-dropped-awards"  # a release's verdict it cannot record is noted as dropped

MemberWork = Work[ReviewDecision, ReevaluationRequest]


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
        self._comparative: list[ComparativeResults] = list(input.comparative)
        self._screens_back_dated = input.screens_back_dated

    @workflow.run
    async def run(self, input: UserBadgesInput) -> None:
        while True:
            await workflow.wait_condition(lambda: self._has_work() or workflow.info().is_continue_as_new_suggested())
            if self._financial:
                await self._apply_financial(input.user_id)
            if self._comparative:  # only ever set by a `comparative` signal: old histories have none
                await self._apply_comparative(input.user_id)
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
                        comparative=self._comparative,
                        screens_back_dated=True,  # a new run: it would screen them anyway
                    )
                )

    def _has_work(self) -> bool:
        return bool(self._pending or self._reevaluations or self._decisions or self._financial or self._comparative)

    async def _apply_pending(self, user_id: uuid.UUID) -> None:
        work: MemberWork = Work(decisions=self._decisions, events=self._pending, reevaluations=self._reevaluations)
        self._pending, self._reevaluations, self._decisions = [], [], []

        wanted = max(
            [event.catalogue_revision for event in work.events] + [r.catalogue_revision for r in work.reevaluations],
            default=0,
        )
        await self._catalogue_from(wanted)
        now = workflow.now()
        loaded: dict[str, ReviewDecision] = {}  # decisions with their held events, once loaded
        try:
            awards = await self._apply(user_id, work, now, loaded)
        except Exception as error:
            failure = _permanent_failure(error)
            if failure is None or not workflow.patched(DEAD_LETTERS):
                raise
            await self._apply_in_parts(user_id, work, now, loaded, failure)
            return
        await self._deliver_webhooks(user_id, awards, self._catalogue.badges)

    async def _apply_in_parts(
        self,
        user_id: uuid.UUID,
        work: MemberWork,
        now: datetime,
        loaded: dict[str, ReviewDecision],
        failure: tuple[str, str],
    ) -> None:
        """`work` failed for good with `failure`: apply it half by half, so what cannot be applied
        ends up alone and is set aside, and everything else counts."""
        if work.items <= 1:
            await self._set_aside(user_id, work, loaded, failure)
            return
        for part in work.halves():
            try:
                awards = await self._apply(user_id, part, now, loaded)
            except Exception as error:
                part_failure = _permanent_failure(error)
                if part_failure is None:
                    raise
                await self._apply_in_parts(user_id, part, now, loaded, part_failure)
                continue
            await self._deliver_webhooks(user_id, awards, self._catalogue.badges)

    async def _apply(
        self, user_id: uuid.UUID, work: MemberWork, now: datetime, loaded: dict[str, ReviewDecision]
    ) -> list[Award]:
        """Decide `work` and record the outcome; the state moves on only once it is recorded.
        Returns the awards, whose webhooks the caller starts."""
        decisions = [await self._with_held_events(user_id, decision, loaded) for decision in work.decisions]
        catalogue = self._catalogue.badges
        outcome = decide_batch(
            self._state,
            work.events,
            decisions,
            work.reevaluations,
            catalogue,
            now,
            lambda _: str(workflow.uuid4()),
            limits=DEFAULT_LIMITS if self._screen_back_dated() else ARRIVAL_LIMITS,
            review_bounds=REVIEW_BOUNDS,
            may_split=lambda: workflow.patched(BOUNDED_REVIEW_ITEMS),
        )
        if outcome.to_record:
            await self._record(
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
                    # The item's events are not needed to close it.
                    resolved=[decision.model_copy(update={"events": []}) for decision in outcome.resolved],
                    decided_at=now,
                    # Only counted by the worker: a local activity's argument is not compared on
                    # replay, so runs that recorded batches without it replay as they did.
                    events=len(work.events),
                )
            )
        self._state = outcome.state
        return outcome.awards

    def _screen_back_dated(self) -> bool:
        """Back-dated events are screened since the SCREEN_BACK_DATED patch; histories from before
        replay without it. A run started since says so in its input and asks nothing: asking costs
        every new run a marker and a search-attribute upsert in Temporal on its first batch, which,
        for a crowd of members arriving at once, queued their first events for seconds
        (bench/RESULTS.md)."""
        return self._screens_back_dated or workflow.patched(SCREEN_BACK_DATED)

    async def _with_held_events(
        self, user_id: uuid.UUID, decision: ReviewDecision, loaded: dict[str, ReviewDecision]
    ) -> ReviewDecision:
        """The decision with the held events of its item, loaded a bounded page at a time. A
        decision that carries its events (sent before the API stopped sending them), or that
        names no item this workflow holds (decided before), is applied as it is."""
        if decision.events or all(item.review_id != decision.review_id for item in self._state.held):
            return decision
        if decision.review_id in loaded:
            return loaded[decision.review_id]
        if not workflow.patched(PAGED_REVIEW_EVENTS):
            return decision
        events: list[BadgeEvent] = []
        after: int | None = 0
        while after is not None:
            page = await workflow.execute_local_activity(
                "load_held_events",
                HeldEventsRequest(
                    user_id=user_id,
                    review_id=decision.review_id,
                    after=after,
                    max_events=HELD_PAGE_EVENTS,
                    max_bytes=HELD_PAGE_BYTES,
                ),
                result_type=HeldEventsPage,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RECORD_RETRY,
            )
            events.extend(page.events)
            after = page.next_after
        loaded[decision.review_id] = decision.model_copy(update={"events": events})
        return loaded[decision.review_id]

    async def _set_aside(
        self, user_id: uuid.UUID, work: MemberWork, loaded: dict[str, ReviewDecision], failure: tuple[str, str]
    ) -> None:
        """Keep what could not be applied as a dead letter, with why, and go on without it."""
        reason, detail = failure
        await workflow.execute_local_activity(
            "record_dead_letter",
            DeadLetter(
                user_id=user_id,
                reason=reason,
                detail=detail,
                events=list(work.events),
                decisions=[loaded.get(decision.review_id, decision) for decision in work.decisions],
                reevaluations=list(work.reevaluations),
            ),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RECORD_RETRY,
        )
        self._state = set_aside(self._state, [event.id for event in work.events])

    async def _apply_financial(self, user_id: uuid.UUID) -> None:
        """Record behaviour evaluations (bank-data badges), oldest first: progress and each award
        once, as this workflow is the one writer of the member's progress rows."""
        results, self._financial = sorted(self._financial, key=lambda r: r.seq), []
        wanted = max(result.catalogue_revision for result in results)
        await self._catalogue_from(wanted)
        catalogue = self._catalogue.badges
        for result in results:
            now = workflow.now()
            await self._keep(user_id, apply_verdicts(self._state, result.verdicts, catalogue, result.seq, now), now)

    async def _apply_comparative(self, user_id: uuid.UUID) -> None:
        """Record peer releases' comparative-badge verdicts: each earned instance (named by its
        release) once, however often a release's step sends it. A verdict on a badge that changed
        since the release decided cannot be recorded (`domain.comparative.unrecordable` says why
        it is not decided again): the release's record of its awards is told it was dropped."""
        results, self._comparative = self._comparative, []
        await self._catalogue_from(max(result.catalogue_revision for result in results))
        catalogue = self._catalogue.badges
        for result in results:
            now = workflow.now()
            dropped = unrecordable(self._state, result.verdicts, catalogue)
            await self._keep(user_id, record_comparative(self._state, result.verdicts, catalogue, now), now)
            # Asked only where a verdict is dropped: runs recorded before dropped them unsaid.
            if dropped and workflow.patched(RECORD_DROPPED_AWARDS):
                await workflow.execute_local_activity(
                    "record_dropped_awards",
                    DroppedAwards(
                        user_id=user_id,
                        release_id=result.release_id,
                        dropped=[DroppedAward(badge_id=verdict.badge_id, reason=why) for verdict, why in dropped],
                    ),
                    start_to_close_timeout=timedelta(seconds=10),
                    retry_policy=RECORD_RETRY,
                )

    async def _keep(self, user_id: uuid.UUID, outcome: Evaluation, now: datetime) -> None:
        """What a batch of verdicts changed: recorded when anything did, then held, then announced."""
        if outcome.changed:
            await self._record(
                ProgressBatch(
                    user_id=user_id,
                    batch_seq=outcome.state.batch_seq,
                    progress=outcome.progress,
                    awards=outcome.awards,
                    decided_at=now,
                )
            )
        self._state = outcome.state
        await self._deliver_webhooks(user_id, outcome.awards, self._catalogue.badges)

    async def _catalogue_from(self, revision: int) -> None:
        """Load the newest catalogue when work was decided under a revision newer than the one held."""
        if revision > self._catalogue.revision:
            self._catalogue = await workflow.execute_local_activity(
                "load_catalogue",
                result_type=CatalogueSnapshot,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RECORD_RETRY,
            )

    async def _record(self, batch: ProgressBatch) -> None:
        """Write one batch's outcome (`record_progress`, retried until the database takes it or
        refuses it for good)."""
        await workflow.execute_local_activity(
            "record_progress", batch, start_to_close_timeout=timedelta(seconds=10), retry_policy=RECORD_RETRY
        )

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

    @workflow.signal
    def comparative(self, results: ComparativeResults) -> None:
        """A peer release's verdicts on the member's comparative badges."""
        self._comparative.append(results)

    @workflow.query
    def snapshot(self) -> BadgeSnapshot:
        return BadgeSnapshot(state=self._state, pending=len(self._pending), catalogue_revision=self._catalogue.revision)


def _permanent_failure(error: Exception) -> tuple[str, str] | None:
    """`(reason, detail)` when `error` means the work can never be applied: an activity's
    non-retryable failure (the database refused a value for good), or an error of the rules on
    this work's data. None for Temporal's own errors (cancellation, non-determinism, timeouts),
    which are never the data's fault and must not be swallowed."""
    # A local activity's failure comes as the activity raised it; a remote one's, as the cause.
    cause = error.cause if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return cause.message, "; ".join(str(detail) for detail in cause.details)
    if isinstance(error, TemporalError):
        return None
    return f"decide_batch: {type(error).__name__}", str(error)
