"""ErasureWorkflow (`user/{uid}/erasure`): a member's right to be forgotten, as a saga of
idempotent steps that Temporal resumes after any crash.

Order matters: the member is refused first (no new data arrives), their bank items are revoked
at the providers (which needs their key to open the access tokens), their workflows end (nothing
writes any more), their rows go, and their data key goes last, so whatever copies remain
(closed workflow histories, backups, logs of ciphertext) can no longer be read.

Its payloads use the service key (see `key_owner_for_workflow`): it must outlive the member's
key. Nothing in it is personal: the member's random id and the step results (counts).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from badges.activities.banking import BankingActivities, MemberRef
    from badges.activities.erasure import ErasureActivities, ErasureRecord, ErasureStep
    from badges.domain.identity import erasure_reference


class ErasureInput(BaseModel):
    user_id: uuid.UUID


class ErasureOutcome(BaseModel):
    reference: uuid.UUID
    bank_connections_removed: int = 0
    workflows_ended: int
    rows_deleted: dict[str, int]
    keys_destroyed: int


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
        await self._do("blocking", ErasureActivities.block_member, step)
        # While the member's key can still open their access tokens: revoke every bank item at
        # its provider (and stop its sync).
        self._step = "removing bank connections"
        banks = await workflow.execute_activity_method(
            BankingActivities.disconnect_member,
            MemberRef(user_id=input.user_id),
            start_to_close_timeout=STEP_TIMEOUT,
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=STEP_RETRY,
        )
        if banks:
            await self._record(step, "bank_connections_removed", {"connections": banks})
        ended = await self._do("ending workflows", ErasureActivities.end_member_workflows, step)
        rows = await self._do("deleting rows", ErasureActivities.delete_member_rows, step)
        keys = await self._do("destroying key", ErasureActivities.destroy_member_key, step)
        # A workflow restarted by a request that raced the first sweep cannot read or write
        # anything now; end it too.
        ended += await self._do("ending workflows", ErasureActivities.end_member_workflows, step)
        await self._record(step, "completed", {})
        self._step = "erased"
        return ErasureOutcome(
            reference=reference,
            bank_connections_removed=banks,
            workflows_ended=ended,
            rows_deleted=rows,
            keys_destroyed=keys,
        )

    async def _do(
        self, name: str, activity: Callable[[ErasureActivities, ErasureStep], Awaitable[T]], step: ErasureStep
    ) -> T:
        self._step = name
        return await workflow.execute_activity_method(
            activity, step, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY
        )

    async def _record(self, step: ErasureStep, action: str, details: dict[str, int]) -> None:
        record = ErasureRecord(user_id=step.user_id, reference=step.reference, action=action, details=details)
        await workflow.execute_activity_method(
            ErasureActivities.record_erasure_step, record, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY
        )

    @workflow.query
    def step(self) -> str:
        return self._step
