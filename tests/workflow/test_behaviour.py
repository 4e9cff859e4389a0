"""BehaviourWorkflow's logic on the time-skipping server, its activity stood in for: it evaluates
on start (the backfill), when data change and when a window closes; it ends without consent and
when told to stop."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from badges.domain.identity import behaviour_workflow_id
from badges.messages.behaviour import BehaviourInput, DataChanged, EvaluationOutcome, EvaluationRequest
from badges.workflows.behaviour import BehaviourWorkflow
from tests.support import eventually

WINDOW = timedelta(days=10)


class StandIn:
    def __init__(self, env: WorkflowEnvironment, consent: bool = True) -> None:
        self.env = env
        self.consent = consent
        self.seqs: list[int] = []

    @activity.defn(name="evaluate_behaviour")
    async def evaluate_behaviour(self, request: EvaluationRequest) -> EvaluationOutcome:
        self.seqs.append(request.seq)
        if not self.consent:
            return EvaluationOutcome(evaluated=False)
        close = await self.env.get_current_time() + WINDOW
        return EvaluationOutcome(evaluated=True, verdicts=1, next_window_close=close)


async def test_evaluates_at_start_on_new_data_and_when_a_window_closes(workflow_env: WorkflowEnvironment) -> None:
    stand_in = StandIn(workflow_env)
    task_queue = f"tq-{uuid.uuid4()}"
    member = uuid.uuid4()
    async with Worker(
        workflow_env.client,
        task_queue=task_queue,
        workflows=[BehaviourWorkflow],
        activities=[stand_in.evaluate_behaviour],
    ):
        handle = await workflow_env.client.start_workflow(
            BehaviourWorkflow.run,
            BehaviourInput(user_id=member),
            id=behaviour_workflow_id(member),
            task_queue=task_queue,
        )

        async def evaluated(count: int) -> None:
            async def reached() -> bool:
                return stand_in.seqs == list(range(1, count + 1))

            await eventually(reached)

        await evaluated(1)  # the backfill
        await handle.signal(BehaviourWorkflow.data_changed, DataChanged(reason="sync"))
        await evaluated(2)
        await workflow_env.sleep(WINDOW + timedelta(minutes=1))  # the window closes
        await evaluated(3)
        await handle.signal(BehaviourWorkflow.stop)
        await handle.result()
    assert stand_in.seqs == [1, 2, 3]


async def test_without_consent_it_ends_after_one_look(workflow_env: WorkflowEnvironment) -> None:
    stand_in = StandIn(workflow_env, consent=False)
    task_queue = f"tq-{uuid.uuid4()}"
    member = uuid.uuid4()
    async with Worker(
        workflow_env.client,
        task_queue=task_queue,
        workflows=[BehaviourWorkflow],
        activities=[stand_in.evaluate_behaviour],
    ):
        handle = await workflow_env.client.start_workflow(
            BehaviourWorkflow.run,
            BehaviourInput(user_id=member),
            id=behaviour_workflow_id(member),
            task_queue=task_queue,
        )
        await handle.result()
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert stand_in.seqs == [1]
