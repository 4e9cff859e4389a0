"""ConsentWorkflow (`user/{uid}/consent`): the truth about a member's consents.

The `change` update queues grants and revocations and answers once the run loop has applied
them (the `grant` and `revoke` signals, which answer nothing, stay for workflows started before
the update existed); the loop sleeps until the next reminder or expiry otherwise. Every change
is projected and announced by a local activity, and so is what a behaviour-tracking grant or end
starts or stops (a marker in the workflow task, not an activity's events and a second task). It
continues as new when Temporal suggests it, carrying its state and unapplied changes.
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
BEHAVIOUR_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))

# Versions of the command sequence (workflow.patched), asked only by runs started before the
# input said `behaviour_locally`: histories recorded before each change replay as they ran.
BEHAVIOUR_ON_CONSENT = "behaviour-on-consent"  # behaviour tracking starts and stops the evaluation
BEHAVIOUR_LOCALLY = "behaviour-locally"  # ... by local activities rather than activities


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
        self._behaviour_locally = input.behaviour_locally

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
                            behaviour_locally=True,  # a new run: it would take the patches anyway
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
        if scope == "behaviour_tracking" and self._tracks_behaviour():
            await self._tell_behaviour("behaviour_data_changed", [user_id, DataChanged(reason="consent")])

    async def _end_scope(self, user_id: uuid.UUID, scope: str) -> None:
        """What must happen outside the database when a scope ends, before it is recorded (which
        deletes the scope's remaining rows): open banking disconnects every bank connection at
        its provider and stops their syncs; behaviour tracking stops the member's evaluation."""
        if scope == "behaviour_tracking" and self._tracks_behaviour():
            await self._tell_behaviour("stop_member_behaviour", [user_id])
        # patched: histories recorded before this step existed replay without it.
        if scope == "open_banking" and workflow.patched("open-banking-disconnect"):
            await workflow.execute_activity(
                "disconnect_member",
                MemberRef(user_id=user_id),
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=10)),
            )

    def _tracks_behaviour(self) -> bool:
        """Whether behaviour tracking starts and stops the evaluation: always, but histories
        recorded before it did replay without it."""
        return self._behaviour_locally or workflow.patched(BEHAVIOUR_ON_CONSENT)

    async def _tell_behaviour(self, step: str, args: list[object]) -> None:
        """Start or stop the member's evaluation (a signal to their behaviour workflow, a few
        milliseconds): by a local activity, its result a marker in this workflow task; by an
        activity (three events and a second workflow task) in runs recorded that way."""
        if self._behaviour_locally or workflow.patched(BEHAVIOUR_LOCALLY):
            await workflow.execute_local_activity(
                step, args=args, start_to_close_timeout=timedelta(minutes=1), retry_policy=BEHAVIOUR_RETRY
            )
        else:
            await workflow.execute_activity(
                step, args=args, start_to_close_timeout=timedelta(minutes=1), retry_policy=BEHAVIOUR_RETRY
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
