"""Workflow tests: workflow logic on the time-skipping server, with stand-ins for the activities
(`@activity.defn(name=...)`), so they need no database and no keys. Tests of a workflow with its
real activities are integration tests (tests/integration/*_workflow.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.conftest import BIN


@pytest.fixture(scope="session")
async def workflow_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server, with the plain pydantic converter (no encryption: no keys)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=str(BIN / "temporal-test-server")
    )
    yield env
    await env.shutdown()
