"""RewardsReleaseWorkflow: grant deferred rewards while this month's budgets have room.

Started by the Temporal Schedule `rewards/release-deferred` (hourly, created by the worker at
start-up), so a reward deferred by an exhausted budget is granted once a new month brings room,
without anyone remembering to ask. Admins can still run it at once (`POST
/v1/admin/rewards/release-deferred`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@workflow.defn
class RewardsReleaseWorkflow:
    @workflow.run
    async def run(self) -> int:
        released: int = await workflow.execute_activity(
            "release_deferred_rewards",
            result_type=int,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5),
        )
        return released
