"""RetentionWorkflow: deletes what is older than the programme keeps it (`db/retention.py`).

Started daily by the Temporal Schedule `retention/purge`, which the worker creates at start-up.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@workflow.defn
class RetentionWorkflow:
    @workflow.run
    async def run(self) -> dict[str, int]:
        deleted: dict[str, int] = await workflow.execute_activity(
            "purge_expired",
            result_type=dict[str, int],
            start_to_close_timeout=timedelta(minutes=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=10),
        )
        return deleted
