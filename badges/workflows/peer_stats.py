"""PeerStatsReleaseWorkflow: one release of peer statistics under differential privacy.

Started by the Temporal Schedule `peers/release-stats` (daily by default, created by the worker at
start-up) and on demand by operators (`POST /v1/admin/peer-stats/releases`). The release's id is
made here, so a retried activity finds its own reservation in the budget ledger and never spends
twice; the activity reserves the budget (or records the refusal), computes and stores the values.
Then the comparative badges the release earns are awarded (`award_comparative_badges`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from badges.messages.comparisons import ComparativeAwardsOutcome
from badges.messages.peer_stats import PeerReleaseOutcome, PeerReleaseRequest

COMPARATIVE_BADGES = "comparative-badges"  # the award step after a release (workflow.patched)


@workflow.defn
class PeerStatsReleaseWorkflow:
    @workflow.run
    async def run(self, request: PeerReleaseRequest | None = None) -> PeerReleaseOutcome:
        release_id = workflow.uuid4()
        outcome: PeerReleaseOutcome = await workflow.execute_activity(
            "release_peer_stats",
            args=[release_id, request or PeerReleaseRequest()],
            result_type=PeerReleaseOutcome,
            start_to_close_timeout=timedelta(minutes=15),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5),
        )
        # Comparative badges, once the release is stored (runs recorded before this step replay
        # without it). Idempotent per release: a retry sends only what was not sent.
        if outcome.status == "released" and workflow.patched(COMPARATIVE_BADGES):
            await workflow.execute_activity(
                "award_comparative_badges",
                outcome.release_id,
                result_type=ComparativeAwardsOutcome,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
        return outcome
