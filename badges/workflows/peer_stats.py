"""PeerStatsReleaseWorkflow: one release of peer statistics under differential privacy.

Started by the Temporal Schedule `peers/release-stats` (daily by default, created by the worker at
start-up) and on demand by admins (`POST /v1/admin/peer-stats/releases`). A scheduled run releases
only when the yearly budget has accrued enough for it (else its outcome is `not_due` and nothing
is recorded: the activity decides, so this workflow's commands are unchanged). The release's id
is made here, so a retried activity finds its own reservation in the budget ledger and never
spends twice; the activity reserves the budget (or records the refusal), computes and stores the
values. Then the comparative badges the release earns are awarded (`award_comparative_badges`),
and the contacts groups are released (`release_contact_stats`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from badges.messages.comparisons import ComparativeAwardsOutcome
from badges.messages.peer_stats import ContactsReleaseOutcome, PeerReleaseOutcome, PeerReleaseRequest

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
        # Not after a scheduled run that was not due: nothing was released for it to follow.
        if outcome.status != "not_due" and workflow.patched("contacts-release"):
            # The contacts groups: their own release id and ledger entry (docs/api/peers.md, "Contacts").
            contacts: ContactsReleaseOutcome = await workflow.execute_activity(
                "release_contact_stats",
                args=[workflow.uuid4(), request or PeerReleaseRequest()],
                result_type=ContactsReleaseOutcome,
                start_to_close_timeout=timedelta(minutes=15),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5),
            )
            outcome = outcome.model_copy(update={"contacts": contacts})
        return outcome
