"""Workflows outside the sandbox for speed are still checked in it: `sandbox_everything()`, which
the workflow and replay tests use, runs a `sandboxed=False` workflow in the sandbox."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

from badges.workers.main import sandbox_everything


@workflow.defn(sandboxed=False)
class ReadsTheClock:
    @workflow.run
    async def run(self) -> str:
        return datetime.now().isoformat()  # the machine's clock: not deterministic on replay


async def run_it(env: WorkflowEnvironment, **runner: object) -> str:
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ReadsTheClock],
        # A restricted call fails the workflow (not only its task), so the test sees it at once.
        workflow_failure_exception_types=[RestrictedWorkflowAccessError],
        **runner,  # type: ignore[arg-type]
    ):
        return await env.client.execute_workflow(
            ReadsTheClock.run, id=f"clock/{uuid.uuid4()}", task_queue=task_queue, run_timeout=timedelta(seconds=30)
        )


async def test_an_opted_out_workflow_runs_unchecked_in_production(time_skipping: WorkflowEnvironment) -> None:
    assert await run_it(time_skipping)


async def test_sandbox_everything_catches_its_non_deterministic_call(time_skipping: WorkflowEnvironment) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await run_it(time_skipping, **sandbox_everything())
    assert "datetime.datetime.now" in str(failure.value.cause)
