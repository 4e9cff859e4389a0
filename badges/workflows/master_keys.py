"""MasterKeyRotationWorkflow: the master keys' life, on a schedule (`db/master_keys.py`).

Started daily by the Temporal Schedule `keys/rotate-master`, which the worker creates at start-up:
a new master key when the active one is older than `BADGES_MASTER_KEY_ROTATION_DAYS`, every data
key re-wrapped under it, and retired keys destroyed `BADGES_BACKUP_RETENTION_DAYS` after they
retired. Its payloads use the service key; they hold key ids and counts, never key material.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from badges.messages.master_keys import MasterKeyRotation


@workflow.defn
class MasterKeyRotationWorkflow:
    @workflow.run
    async def run(self) -> MasterKeyRotation:
        outcome: MasterKeyRotation = await workflow.execute_activity(
            "rotate_master_keys",
            result_type=MasterKeyRotation,
            start_to_close_timeout=timedelta(minutes=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=10),
        )
        return outcome
