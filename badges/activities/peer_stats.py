"""`release_peer_stats`: one release of peer statistics (PeerStatsReleaseWorkflow).

A scheduled run first asks the ledger whether a release is due (the yearly budget accrues
evenly: `db.peers.pace`); when it is not, nothing is read or recorded. Otherwise it reads every
consenting member's inputs in one COPY (`consenting_inputs`), reserves the release's privacy loss
in the budget ledger (or records why it is refused; a retried attempt that finds no one cancels
the reservation an earlier attempt made), computes the release with OpenDP
(`insights/peers.py`, off the event loop) and stores its values with the loss its compositors'
privacy maps give."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import uuid
from datetime import UTC, datetime

import polars as pl
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from badges.config import Settings
from badges.db.catalogue import load_catalogue
from badges.db.peers import (
    Budget,
    ReleasedGroup,
    cancel_reservation,
    complete_release,
    consenting_inputs,
    ledger_entry,
    release_pace,
    reserve_release,
)
from badges.insights.peers import (
    MECHANISM,
    Release,
    ReleasePlan,
    allocation_of,
    describe,
    dimensions_of,
    peer_frame,
    plan_for,
    release,
)
from badges.messages.peer_stats import PeerReleaseOutcome, PeerReleaseRequest

EMPTY = "no member consents"


class PeerStatsActivities:
    def __init__(self, pool: AsyncConnectionPool, engine: AsyncEngine, settings: Settings) -> None:
        self._pool = pool
        self._engine = engine
        self._settings = settings

    @activity.defn
    async def release_peer_stats(self, release_id: uuid.UUID, request: PeerReleaseRequest) -> PeerReleaseOutcome:
        now = datetime.now(UTC)
        _, catalogue = await load_catalogue(self._engine)
        plan = plan_for(
            catalogue,
            self._settings.peer_release_epsilon,
            self._settings.peer_min_group_size,
            allocation=allocation_of(self._settings),
            dimensions=dimensions_of(self._settings),
        )
        budget = Budget(self._settings.peer_release_epsilon, self._settings.peer_yearly_epsilon)
        paced = request.requested_by == "schedule"
        # (A retried attempt whose release is in the ledger already goes on to what it decided.)
        if paced and await ledger_entry(self._pool, release_id) is None:
            found = await release_pace(self._pool, plan.epsilon, budget, now)
            if not found.due:
                return PeerReleaseOutcome(release_id=release_id, status="not_due", next_due=found.next_due)
        inputs = await consenting_inputs(self._pool)
        if inputs.is_empty():
            # A retried attempt: the one before may have reserved the budget (nothing was
            # measured: the reservation is cancelled, not held for a year) or stored the release.
            if await cancel_reservation(self._pool, release_id, EMPTY) == "released":
                return await self._outcome(release_id)
            return PeerReleaseOutcome(release_id=release_id, status="empty", reason=EMPTY)
        reservation = await reserve_release(
            self._pool,
            release_id,
            plan.epsilon,
            budget,
            requested_by=request.requested_by,
            mechanism=MECHANISM,
            parameters=describe(plan),
            now=now,
            paced=paced,
        )
        if reservation.status == "not_due":  # another release took the accrued budget meanwhile
            return PeerReleaseOutcome(release_id=release_id, status="not_due", next_due=reservation.next_due)
        if reservation.status == "refused":
            return PeerReleaseOutcome(release_id=release_id, status="refused", reason=reservation.reason)
        if reservation.status == "released":  # an earlier attempt finished
            return await self._outcome(release_id)
        result = await asyncio.to_thread(compute, inputs, plan)
        del inputs
        await complete_release(
            self._pool,
            release_id,
            epsilon=result.epsilon,
            delta=result.delta,
            population=result.population,
            parameters={**describe(plan), **record_of(result)},
            groups=[ReleasedGroup(g.dimension, g.level, g.key, g.noisy_count, dict(g.values)) for g in result.groups],
            now=datetime.now(UTC),
        )
        return PeerReleaseOutcome(
            release_id=release_id,
            status="released",
            epsilon=result.epsilon,
            delta=result.delta,
            groups=len(result.groups),
        )

    async def _outcome(self, release_id: uuid.UUID) -> PeerReleaseOutcome:
        entry = await ledger_entry(self._pool, release_id)
        assert entry is not None
        return PeerReleaseOutcome(
            release_id=release_id,
            status="released",
            epsilon=entry.epsilon,
            delta=entry.delta,
            groups=entry.groups_released or 0,
        )


def compute(inputs: pl.DataFrame, plan: ReleasePlan) -> Release:
    """The release, in this (worker) thread; then OpenDP's objects are freed here too. Left to a
    later garbage collection, their finalisers could run inside a workflow's sandbox, which
    refuses what they call (`os.environ`)."""
    try:
        return release(peer_frame(inputs), plan)
    finally:
        gc.collect()


def record_of(result: Release) -> dict[str, object]:
    """What the ledger keeps of a release run: each statistic's mechanism, scale and loss (and
    the measurement it was part of), each phase's loss, the thresholds and how many groups were
    rolled up."""
    return {
        "queries": [dataclasses.asdict(query) for query in result.queries],
        "phaseEpsilons": list(result.phase_epsilons),
        "thresholds": result.thresholds,
        "rolledUp": result.rolled_up,
    }
