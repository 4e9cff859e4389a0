"""Workflows outside the sandbox for speed are still checked in it: `sandbox_everything()`, which
the workflow and replay tests use, runs a `sandboxed=False` workflow in the sandbox, and imports
our workflow modules inside it, where the sandbox sees what they call."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

from badges.workers.main import sandbox_everything, workflow_runner
from badges.workflows import user_badges, webhook_delivery


@workflow.defn(sandboxed=False)
class ReadsTheClock:
    @workflow.run
    async def run(self) -> str:
        return datetime.now().isoformat()  # the machine's clock: not deterministic on replay


CHECKED_MODULES = [user_badges, webhook_delivery]


@workflow.defn(sandboxed=False)
class NamesItsModules:
    @workflow.run
    async def run(self) -> list[int]:
        # The module objects this workflow's code runs with: the process's own when passed
        # through (unchecked), fresh ones when imported inside the sandbox (checked).
        return [id(module) for module in CHECKED_MODULES]


async def run_it(env: WorkflowEnvironment, workflow_run: Any, **runner: object) -> Any:
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ReadsTheClock, NamesItsModules],
        # A restricted call fails the workflow (not only its task), so the test sees it at once.
        workflow_failure_exception_types=[RestrictedWorkflowAccessError],
        **runner,  # type: ignore[arg-type]
    ):
        return await env.client.execute_workflow(
            workflow_run, id=f"probe/{uuid.uuid4()}", task_queue=task_queue, run_timeout=timedelta(seconds=30)
        )


async def test_an_opted_out_workflow_runs_unchecked_in_production(time_skipping: WorkflowEnvironment) -> None:
    assert await run_it(time_skipping, ReadsTheClock.run)


async def test_sandbox_everything_catches_its_non_deterministic_call(time_skipping: WorkflowEnvironment) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await run_it(time_skipping, ReadsTheClock.run, **sandbox_everything())
    assert "datetime.datetime.now" in str(failure.value.cause)


async def test_sandbox_everything_checks_our_workflow_code(time_skipping: WorkflowEnvironment) -> None:
    ours = [id(module) for module in CHECKED_MODULES]
    # In production they pass through (no re-import per workflow run, unchecked)...
    assert await run_it(time_skipping, NamesItsModules.run, **{"workflow_runner": workflow_runner()}) == ours
    # ...in the tests every one of them is imported inside the sandbox, so its calls are checked.
    checked = await run_it(time_skipping, NamesItsModules.run, **sandbox_everything())
    assert all(inside != outside for inside, outside in zip(checked, ours, strict=True))
