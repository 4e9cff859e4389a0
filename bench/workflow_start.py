"""What starting a member's workflow costs the worker, by workflow runner (JSON on stdout).

    .venv/bin/python -m bench.workflow_start [--workflows 200]

Starts N `UserBadgesWorkflow`s on an in-memory dev server and waits for each first workflow task;
reports CPU milliseconds per new workflow (this process: worker and client) and the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

import psutil
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from badges.domain.identity import user_badges_workflow_id
from badges.messages.user_badges import UserBadgesInput
from badges.workers.main import workflow_runner
from badges.workflows.user_badges import UserBadgesWorkflow


async def measure(env: WorkflowEnvironment, runner: WorkflowRunner, workflows: int) -> dict[str, float]:
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=task_queue, workflows=[UserBadgesWorkflow], workflow_runner=runner):
        process = psutil.Process()
        before, began = process.cpu_times(), time.perf_counter()
        handles = await asyncio.gather(
            *(
                env.client.start_workflow(
                    UserBadgesWorkflow.run,
                    UserBadgesInput(user_id=member),
                    id=user_badges_workflow_id(member),
                    task_queue=task_queue,
                )
                for member in (uuid.uuid4() for _ in range(workflows))
            )
        )
        await asyncio.gather(*(handle.query(UserBadgesWorkflow.snapshot) for handle in handles))
        after, wall = process.cpu_times(), time.perf_counter() - began
        await asyncio.gather(*(handle.terminate() for handle in handles))
    cpu = (after.user + after.system) - (before.user + before.system)
    return {"cpu_ms_per_workflow": round(cpu * 1000 / workflows, 2), "wall_s": round(wall, 2)}


async def main(workflows: int) -> None:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        dev_server_log_level="error",
    )
    runners: dict[str, WorkflowRunner] = {
        "sandbox_default": SandboxedWorkflowRunner(),
        "sandbox_badges_passed_through (the worker's)": workflow_runner(),
        "unsandboxed": UnsandboxedWorkflowRunner(),
    }
    try:
        results = {name: await measure(env, runner, workflows) for name, runner in runners.items()}
    finally:
        await env.shutdown()
    print(json.dumps({"workflows": workflows, "runners": results}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=int, default=200)
    asyncio.run(main(parser.parse_args().workflows))
