"""RetentionWorkflow: deletes what is older than the programme keeps it (`db/retention.py`).

Started daily by the Temporal Schedule `retention/purge`, which the worker creates at start-up.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from badges.activities.retention import RetentionActivities

RETENTION_SCHEDULE_ID = "retention/purge"
RETENTION_EVERY = timedelta(days=1)


@workflow.defn
class RetentionWorkflow:
    @workflow.run
    async def run(self) -> dict[str, int]:
        return await workflow.execute_activity_method(
            RetentionActivities.purge_expired,
            start_to_close_timeout=timedelta(minutes=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=10),
        )
