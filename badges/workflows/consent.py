"""ConsentWorkflow (`user/{uid}/consent`): the truth about a member's consents.

The `change` update queues grants and revocations and answers once the run loop has applied
them (the `grant` and `revoke` signals, which answer nothing, stay for workflows started before
the update existed); the loop sleeps until the next reminder or expiry otherwise. Every change
is projected and announced by a local activity. It continues as new when Temporal suggests it,
carrying its state and unapplied changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from badges.domain.consent import (
        ConsentGrant,
        ConsentState,
        ScopeConsent,
        apply_due,
        due,
        grant,
        next_deadline,
        revoke,
    )
    from badges.messages.bank_sync import MemberRef
    from badges.messages.behaviour import DataChanged
    from badges.messages.consent import ConsentChange, ConsentChanges, ConsentInput, GrantOrRevocation

# How many request ids the workflow remembers (a request comes at most twice, seconds apart).
RECENT_REQUESTS = 64
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))


@workflow.defn
class ConsentWorkflow:
    @workflow.init
    def __init__(self, input: ConsentInput) -> None:
        self._state = input.state
        self._pending: list[GrantOrRevocation] = list(input.pending)
        # Changes taken from `_pending` so far, and how many of those are applied: an update
        # waits until everything queued up to its own changes is applied.
        self._taken = 0
        self._applied = 0
        self._updates_waiting = 0
        # Request id -> the count of changes queued up to and including its own: it is applied once
        # `_applied` reaches that. Carried ids count as applied with the changes carried along.
        self._requests: dict[str, int] = dict.fromkeys(input.recent_requests, len(self._pending))

    @workflow.run
    async def run(self, input: ConsentInput) -> None:
        while True:
            deadline = next_deadline(self._state, workflow.now())
            timeout = None if deadline is None else max(deadline - workflow.now(), timedelta(seconds=1))
            # On timeout wait_condition raises: the next reminder or expiry is due.
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: bool(self._pending) or workflow.info().is_continue_as_new_suggested(), timeout=timeout
                )
            await self._apply(input.user_id)
            if workflow.info().is_continue_as_new_suggested():
                # An update waiting for changes that are still queued has them applied first (the
                # loop again); one whose changes are applied finishes before the run continues.
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() or bool(self._pending and self._updates_waiting)
                )
                if workflow.all_handlers_finished():
                    workflow.continue_as_new(
                        ConsentInput(
                            user_id=input.user_id,
                            state=self._state,
                            pending=self._pending,
                            recent_requests=list(self._requests),
                        )
                    )

    async def _apply(self, user_id: uuid.UUID) -> None:
        now = workflow.now()
        changes, self._pending = self._pending, []
        self._taken += len(changes)
        taken = self._taken
        for change in changes:
            if isinstance(change, ConsentGrant):
                try:
                    self._state = grant(self._state, change, now)
                except ValueError:
                    workflow.logger.warning("consent grant refused", extra={"scope": change.scope})
                    continue
                await self._record(user_id, change.scope, "granted", self._state.scopes[change.scope])
                await self._start_scope(user_id, change.scope)
            else:
                before = self._state.scopes.get(change)
                self._state = revoke(self._state, change, now)
                after = self._state.scopes.get(change)
                if after is not None and after != before:
                    await self._end_scope(user_id, change)
                    await self._record(user_id, change, "revoked", after, revoked=True)
        result = due(self._state, now)
        self._state = apply_due(self._state, result)
        for scope in result.expired:
            await self._end_scope(user_id, scope)
            await self._record(user_id, scope, "expired", self._state.scopes[scope])
        for scope in result.reminders:
            await self._record(user_id, scope, "expiring", self._state.scopes[scope])
        self._applied = taken

    async def _start_scope(self, user_id: uuid.UUID, scope: str) -> None:
        """What a grant starts: behaviour tracking starts the member's behaviour evaluation (its
        backfill of whatever bank data is already linked)."""
        # patched: histories recorded before behaviour was evaluated replay without it.
        if scope == "behaviour_tracking" and workflow.patched("behaviour-on-consent"):
            await workflow.execute_activity(
                "behaviour_data_changed",
                args=[user_id, DataChanged(reason="consent")],
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )

    async def _end_scope(self, user_id: uuid.UUID, scope: str) -> None:
        """What must happen outside the database when a scope ends, before it is recorded (which
        deletes the scope's remaining rows): open banking disconnects every bank connection at
        its provider and stops their syncs; behaviour tracking stops the member's evaluation."""
        # patched: histories recorded before this step existed replay without it.
        if scope == "behaviour_tracking" and workflow.patched("behaviour-on-consent"):
            await workflow.execute_activity(
                "stop_member_behaviour",
                user_id,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
        if scope == "open_banking" and workflow.patched("open-banking-disconnect"):
            await workflow.execute_activity(
                "disconnect_member",
                MemberRef(user_id=user_id),
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=10)),
            )

    async def _record(
        self, user_id: uuid.UUID, scope: str, status: str, consent: ScopeConsent, revoked: bool = False
    ) -> None:
        await workflow.execute_local_activity(
            "record_consent",
            ConsentChange.model_validate(
                {
                    "user_id": user_id,
                    "scope": scope,
                    "status": status,
                    "purpose": consent.purpose,
                    "granted_at": consent.granted_at,
                    "expires_at": consent.expires_at,
                    "revoked_at": workflow.now() if revoked else None,
                }
            ),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RECORD_RETRY,
        )

    def _queue(self, request: ConsentChanges) -> int:
        """Queue a request's changes, once per request id; the count `_applied` must reach for
        them to be applied."""
        if request.request_id is not None and request.request_id in self._requests:
            return self._requests[request.request_id]
        self._pending.extend(request.changes)
        queued = self._taken + len(self._pending)
        if request.request_id is not None:
            self._requests[request.request_id] = queued
            while len(self._requests) > RECENT_REQUESTS:
                del self._requests[next(iter(self._requests))]
        return queued

    @workflow.update
    async def change(self, request: ConsentChanges) -> None:
        """Grant and revoke, answering once the changes are recorded (a grant that `grant`
        refuses is logged and skipped, as by the signals)."""
        queued = self._queue(request)
        self._updates_waiting += 1
        try:
            await workflow.wait_condition(lambda: self._applied >= queued)
        finally:
            self._updates_waiting -= 1

    @workflow.signal
    def apply_changes(self, request: ConsentChanges) -> None:
        """The same request as `change`, sent when the update was not answered in time: a signal
        is in the history at once, while an update no worker has accepted yet is held only in the
        server's memory."""
        self._queue(request)

    @workflow.signal
    def grant(self, request: ConsentGrant) -> None:
        self._pending.append(request)

    @workflow.signal
    def revoke(self, scope: str) -> None:
        self._pending.append(scope)

    @workflow.query
    def consents(self) -> ConsentState:
        return self._state
