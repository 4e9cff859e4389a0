"""AuditCheckpointWorkflow: anchors the audit log by signing a checkpoint of its hash chain
(`db/audit_checkpoints.py`), kept outside the database.

Started every few minutes by the Temporal Schedule `audit/checkpoint`, which the worker creates at
start-up when an anchoring key is configured. A chain that no longer extends the last checkpoint
fails the run for good (and every later run) rather than being signed: operators see it failed.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from badges.messages.audit import AuditCheckpointResult


@workflow.defn
class AuditCheckpointWorkflow:
    @workflow.run
    async def run(self) -> AuditCheckpointResult:
        signed: AuditCheckpointResult = await workflow.execute_activity(
            "checkpoint_audit_log",
            result_type=AuditCheckpointResult,
            # The first checkpoint walks the whole log; later ones only what was appended since.
            start_to_close_timeout=timedelta(minutes=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5),
        )
        return signed
