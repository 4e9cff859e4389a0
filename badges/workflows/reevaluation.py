"""ReevaluationWorkflow (`catalogue/reevaluate/{badge_id}/v{version}`): after an admin changes a
badge, asks every member with progress on it to re-check that progress under the new version.

One run per badge version (the id says which), so asking twice does the work once; members'
workflows make the re-check itself idempotent too. Pages through members so a large programme
never makes one large activity or history event.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from badges.messages.reevaluation import MemberPage, ReevaluationInput, ReevaluationProgress, ReevaluationSignals

PAGE_SIZE = 500


@workflow.defn
class ReevaluationWorkflow:
    @workflow.init
    def __init__(self, input: ReevaluationInput) -> None:
        self._signalled = input.members_signalled
        self._done = False

    @workflow.run
    async def run(self, input: ReevaluationInput) -> ReevaluationProgress:
        after = input.after
        while True:
            page: MemberPage = await workflow.execute_activity(
                "members_with_progress",
                args=[input.badge_id, after, PAGE_SIZE],
                result_type=MemberPage,
                start_to_close_timeout=timedelta(seconds=30),
            )
            if page.member_ids:
                await workflow.execute_activity(
                    "signal_reevaluation",
                    ReevaluationSignals(
                        member_ids=page.member_ids,
                        badge_id=input.badge_id,
                        catalogue_revision=input.catalogue_revision,
                    ),
                    start_to_close_timeout=timedelta(minutes=5),
                    heartbeat_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
                )
                self._signalled += len(page.member_ids)
                after = page.member_ids[-1]
            if len(page.member_ids) < PAGE_SIZE:
                break
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    input.model_copy(update={"after": after, "members_signalled": self._signalled})
                )
        self._done = True
        return ReevaluationProgress(members_signalled=self._signalled, done=True)

    @workflow.query
    def progress(self) -> ReevaluationProgress:
        return ReevaluationProgress(members_signalled=self._signalled, done=self._done)
