"""MemberExportWorkflow (`user/{uid}/export`): gathers everything held about a member, one
section per activity, so a large history neither times out one request nor holds one huge
payload; progress is a query away. One runs at a time per member (the API joins a running one)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from badges.messages.export import ExportProgress, ExportRequest, ExportSection

EXPORT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# Generous: one section of a long history (every event receipt of years) is a big read.
SECTION_TIMEOUT = timedelta(minutes=10)


@workflow.defn
class MemberExportWorkflow:
    @workflow.init
    def __init__(self, request: ExportRequest) -> None:
        self._progress = ExportProgress(export_id=request.export_id)

    @workflow.run
    async def run(self, request: ExportRequest) -> ExportProgress:
        sections: list[str] = await workflow.execute_activity(
            "begin_export",
            request,
            result_type=list[str],
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=EXPORT_RETRY,
        )
        self._progress.sections_total = len(sections)
        for section in sections:
            self._progress.rows += await workflow.execute_activity(
                "export_section",
                ExportSection(user_id=request.user_id, export_id=request.export_id, section=section),
                result_type=int,
                start_to_close_timeout=SECTION_TIMEOUT,
                retry_policy=EXPORT_RETRY,
            )
            self._progress.sections_done += 1
        await workflow.execute_activity(
            "finish_export",
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=EXPORT_RETRY,
        )
        self._progress.completed = True
        return self._progress

    @workflow.query
    def progress(self) -> ExportProgress:
        return self._progress
