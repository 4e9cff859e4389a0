"""BehaviourWorkflow (`user/{uid}/behaviour`): a member's financial behaviour, evaluated durably.

Started when the member grants `behaviour_tracking` (or by the first sync after it), it evaluates
at once (the backfill: every complete window of the linked history), then whenever a sync says
their bank data changed (`data_changed`), and at the close of each tracking window in the
member's time zone (a durable timer, jittered per member so a million windows do not close in
the same second). Each evaluation (`evaluate_behaviour`) recomputes the member's monthly figures,
decides every bank-data badge and hands the verdicts to the member's badge workflow, the one
writer of their progress and awards. Without consent the evaluation says so and the workflow
ends; a revoked consent ends it too (`stop`). It continues as new when Temporal suggests it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from badges.messages.behaviour import BehaviourInput, DataChanged, EvaluationOutcome, EvaluationRequest

EVALUATION_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10))
# Without a window to wait for (no history yet), look again after this long.
IDLE = timedelta(days=1)


@workflow.defn
class BehaviourWorkflow:
    @workflow.init
    def __init__(self, input: BehaviourInput) -> None:
        self._seq = input.seq
        self._due = input.pending  # evaluate at the next turn of the loop
        self._next_close = input.next_window_close
        self._stop = False

    @workflow.run
    async def run(self, input: BehaviourInput) -> None:
        while not self._stop:
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    input.model_copy(
                        update={"seq": self._seq, "pending": self._due, "next_window_close": self._next_close}
                    )
                )
            if self._due:
                self._due = False
                self._seq += 1
                outcome = await workflow.execute_activity(
                    "evaluate_behaviour",
                    EvaluationRequest(user_id=input.user_id, seq=self._seq, as_of=workflow.now()),
                    result_type=EvaluationOutcome,
                    start_to_close_timeout=timedelta(minutes=5),
                    retry_policy=EVALUATION_RETRY,
                )
                if not outcome.evaluated:
                    return  # no consent: nothing is evaluated (its grant starts this again)
                self._next_close = outcome.next_window_close
            wait = IDLE
            if self._next_close is not None:
                wait = max(timedelta(seconds=1), self._next_close - workflow.now())
            try:
                await workflow.wait_condition(
                    lambda: self._due or self._stop or workflow.info().is_continue_as_new_suggested(),
                    timeout=wait,
                )
            except TimeoutError:
                self._due = True  # a window closed (or a day passed without one): look again

    @workflow.signal
    def data_changed(self, change: DataChanged) -> None:
        self._due = True

    @workflow.signal
    def stop(self) -> None:
        """The member's `behaviour_tracking` consent ended: evaluate no more."""
        self._stop = True

    @workflow.query
    def evaluations(self) -> int:
        return self._seq
