"""BankSyncWorkflow (`bank/{connection_id}/sync`): keeps one bank connection's transactions
current for as long as the member consents.

It syncs at once on start (the initial full sync), then on a jittered interval (default every 6
hours) and whenever a verified provider webhook says there is news (`sync_now`). Failures:
- rate limits and provider outages are retried by the activity with backoff; when a sync still
  fails, a circuit breaker opens: after `DEGRADED_AFTER` failed syncs in a row the connection
  shows `degraded`, and the workflow waits longer and longer (up to `MAX_COOL_DOWN`) before
  trying again; one success closes it;
- when many connections fail against one provider at once, that provider's breaker
  (`domain/provider_breaker.py`, shared through the database) opens: `sync_connection` then
  calls nothing and answers `ProviderPaused` with the wait; the connection shows `degraded` (the
  member is told once, an insight: their bank's data is delayed), its own breaker is untouched,
  and it sleeps until the provider's cool-down ends; one probe's success resumes everyone;
- `ITEM_LOGIN_REQUIRED` moves the connection to `login_required` (the member is told on their
  stream) and the workflow waits for `relinked` (the member re-authenticated in update mode);
- no consent, or a connection that is gone, ends the workflow; `disconnect` revokes the item at
  the provider, deletes the connection's data and ends it.
It continues as new when Temporal suggests it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from badges.messages.bank_sync import (
        CONNECTION_GONE,
        CONSENT_MISSING,
        LOGIN_REQUIRED,
        PROVIDER_PAUSED,
        PROVIDER_REFUSED,
        BankSyncInput,
        BankSyncState,
        ConnectionRef,
        StatusChange,
        SyncOutcome,
    )
    from badges.messages.behaviour import DataChanged

JITTER = 0.1  # each wait is the interval ± 10 %, so connections linked together do not sync together
DEGRADED_AFTER = 3
MAX_COOL_DOWN = timedelta(hours=6)
BASE_COOL_DOWN = timedelta(minutes=1)
PAUSE_MARGIN = timedelta(seconds=1)
COOL_DOWN_DOUBLINGS = 9  # 1 min * 2**9 > MAX_COOL_DOWN: the exponent stays small however long it fails
SYNC_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=4,
)
STATUS_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


@workflow.defn
class BankSyncWorkflow:
    @workflow.init
    def __init__(self, input: BankSyncInput) -> None:
        self._failures = input.failures
        self._login_required = input.login_required
        self._sync_requested = input.sync_requested and not input.login_required
        self._disconnect = False
        self._status = "login_required" if input.login_required else "syncing"
        self._syncs = 0
        self._last: SyncOutcome | None = None
        self._provider_paused = input.provider_paused
        self._paused_for: timedelta | None = None  # the provider's breaker asks this long a wait

    @workflow.run
    async def run(self, input: BankSyncInput) -> None:
        ref = ConnectionRef(connection_id=input.connection_id)
        while not self._disconnect:
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._disconnect:  # a disconnect that just arrived is finished here instead
                    workflow.continue_as_new(
                        input.model_copy(
                            update={
                                "failures": self._failures,
                                "login_required": self._login_required,
                                "sync_requested": self._sync_requested,
                                "provider_paused": self._provider_paused,
                            }
                        )
                    )
                continue
            if self._login_required:
                await workflow.wait_condition(
                    lambda: (
                        not self._login_required or self._disconnect or workflow.info().is_continue_as_new_suggested()
                    )
                )
                continue
            if self._sync_requested:
                self._sync_requested = False
                synced = self._syncs
                if not await self._sync(ref):
                    return  # no consent: its end disconnects every connection (ConsentWorkflow)
                if self._syncs > synced:
                    await self._tell_behaviour(input)
            await self._wait(input)
        await workflow.execute_activity(
            "disconnect_connection",
            ref,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=10)),
        )

    async def _sync(self, ref: ConnectionRef) -> bool:
        """One sync. False when the workflow should end."""
        try:
            self._last = await workflow.execute_activity(
                "sync_connection",
                ref,
                result_type=SyncOutcome,
                start_to_close_timeout=timedelta(minutes=10),
                # The activity heartbeats every 10 s however slow the provider is: a worker that
                # died mid-batch is noticed after this, and the batch starts again from the
                # stored cursor.
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=SYNC_RETRY,
            )
        except ActivityError as error:
            kind = error.cause.type if isinstance(error.cause, ApplicationError) else None
            if kind == CONSENT_MISSING:
                return False  # the consent's end disconnects every connection (ConsentWorkflow)
            if kind == CONNECTION_GONE:
                self._disconnect = True  # marked disconnected (or deleted): finish the disconnection
                return True
            if kind == LOGIN_REQUIRED:
                self._login_required = True
                await self._record(ref, "login_required", kind)
                return True
            if kind == PROVIDER_PAUSED and isinstance(error.cause, ApplicationError):
                # The provider's breaker is open: no call was made, and it is not this
                # connection's failure. The member is told once, the wait is the provider's.
                details = error.cause.details
                self._paused_for = timedelta(seconds=float(details[0]) if details else 60.0)
                if not self._provider_paused:
                    self._provider_paused = True
                    await self._record(ref, "degraded", PROVIDER_PAUSED)
                return True
            self._failures += 1
            if self._failures >= DEGRADED_AFTER or kind == PROVIDER_REFUSED:
                await self._record(ref, "degraded", kind or "error")
            return True
        self._syncs += 1
        self._failures = 0
        self._provider_paused = False
        self._status = "active"  # sync_connection stored it with the batch
        return True

    async def _tell_behaviour(self, input: BankSyncInput) -> None:
        """New or changed transactions: the member's behaviour is evaluated again (the first
        sync's whole history is the backfill). Only with their consent (the activity checks)."""
        last = self._last
        if last is None or not last.applied or not (last.added or last.modified or last.removed):
            return
        # patched: histories recorded before behaviour was evaluated replay without it.
        if not workflow.patched("behaviour-on-sync"):
            return
        await workflow.execute_activity(
            "behaviour_data_changed",
            args=[input.user_id, DataChanged(first=last.first_date, last=last.last_date)],
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=STATUS_RETRY,
        )

    async def _wait(self, input: BankSyncInput) -> None:
        """Until the next scheduled sync (jittered), a longer cool-down while the breaker is
        open, or a signal."""
        breaker_open = self._failures >= DEGRADED_AFTER or self._paused_for is not None
        if self._paused_for is not None:
            # Until the provider's breaker lets a probe through, spread out so the paused
            # connections do not all ask at the same instant.
            delay = self._paused_for * (1 + JITTER * workflow.random().random()) + PAUSE_MARGIN
            self._paused_for = None
        elif self._failures:
            doublings = min(self._failures - 1, COOL_DOWN_DOUBLINGS)
            delay = min(BASE_COOL_DOWN * 2**doublings, MAX_COOL_DOWN)
        else:
            spread = 1 + JITTER * (2 * workflow.random().random() - 1)
            delay = timedelta(seconds=input.interval_seconds * spread)

        def woken() -> bool:
            # While the breaker is open a webhook waits for the cool-down like everything else:
            # a burst of them must not hammer a provider that keeps failing.
            return (
                (self._sync_requested and not breaker_open)
                or self._disconnect
                or self._login_required
                or workflow.info().is_continue_as_new_suggested()
            )

        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(woken, timeout=delay)
            return
        self._sync_requested = True  # the time has come

    async def _record(self, ref: ConnectionRef, status: str, error: str) -> None:
        self._status = status
        await workflow.execute_activity(
            "record_status",
            StatusChange(connection_id=ref.connection_id, status=status, error=error),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STATUS_RETRY,
        )

    @workflow.signal
    def sync_now(self) -> None:
        """A verified provider webhook: new data is available."""
        self._sync_requested = True

    @workflow.signal
    def relinked(self) -> None:
        """The member re-authenticated the item (update mode): syncing resumes at once."""
        self._login_required = False
        self._failures = 0
        self._sync_requested = True

    @workflow.signal
    def disconnect(self) -> None:
        self._disconnect = True

    @workflow.query
    def state(self) -> BankSyncState:
        return BankSyncState(status=self._status, failures=self._failures, syncs=self._syncs, last=self._last)
