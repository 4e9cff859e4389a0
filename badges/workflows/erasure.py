"""ErasureWorkflow (`user/{uid}/erasure`): a member's right to be forgotten, as a saga of
idempotent steps that Temporal resumes after any crash.

Order matters: the member is refused first (no new data arrives), their bank items are revoked
at the providers (which needs their key to open the access tokens), their workflows end (nothing
writes any more), their rows go, and their data key goes last, so whatever copies remain
(closed workflow histories, logs of ciphertext) can no longer be read; a backup taken before
holds the data key wrapped by a master key, and stops opening when that is destroyed
(`MasterKeyRotationWorkflow`).

Its payloads use the service key (see `key_owner_for_workflow`): it must outlive the member's
key. Nothing in it is personal: the member's random id and the step results (counts).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from badges.domain.identity import erasure_reference
    from badges.messages.bank_sync import MemberRef
    from badges.messages.erasure import ErasureInput, ErasureOutcome, ErasureRecord, ErasureStep

T = TypeVar("T")

# Retried until it succeeds: an erasure that was asked for must finish.
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
STEP_TIMEOUT = timedelta(minutes=2)


@workflow.defn
class ErasureWorkflow:
    def __init__(self) -> None:
        self._step = "starting"

    @workflow.run
    async def run(self, input: ErasureInput) -> ErasureOutcome:
        reference = erasure_reference(workflow.info().run_id)
        step = ErasureStep(user_id=input.user_id, reference=reference)
        await self._do("blocking", "block_member", step, type(None))
        # While the member's key can still open their access tokens: revoke every bank item at
        # its provider (and stop its sync).
        self._step = "removing bank connections"
        banks: int = await workflow.execute_activity(
            "disconnect_member",
            MemberRef(user_id=input.user_id),
            result_type=int,
            start_to_close_timeout=STEP_TIMEOUT,
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=STEP_RETRY,
        )
        if banks:
            await self._record(step, "bank_connections_removed", {"connections": banks})
        ended = await self._do("ending workflows", "end_member_workflows", step, int)
        rows = await self._do("deleting rows", "delete_member_rows", step, dict[str, int])
        keys = await self._do("destroying key", "destroy_member_key", step, int)
        # A workflow restarted by a request that raced the first sweep cannot read or write
        # anything now; end it too.
        ended += await self._do("ending workflows", "end_member_workflows", step, int)
        await self._record(step, "completed", {})
        self._step = "erased"
        return ErasureOutcome(
            reference=reference,
            bank_connections_removed=banks,
            workflows_ended=ended,
            rows_deleted=rows,
            keys_destroyed=keys,
        )

    async def _do(self, name: str, activity: str, step: ErasureStep, result_type: type[T]) -> T:
        self._step = name
        result: T = await workflow.execute_activity(
            activity, step, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY, result_type=result_type
        )
        return result

    async def _record(self, step: ErasureStep, action: str, details: dict[str, int]) -> None:
        record = ErasureRecord(user_id=step.user_id, reference=step.reference, action=action, details=details)
        await workflow.execute_activity(
            "record_erasure_step", record, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY
        )

    @workflow.query
    def step(self) -> str:
        return self._step
