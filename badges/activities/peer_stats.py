"""`release_peer_stats`: one release of peer statistics (PeerStatsReleaseWorkflow).

Reads every consenting member's inputs in one query (`peer_inputs`), reserves the release's
privacy loss in the budget ledger (or records why it is refused), computes the release with
OpenDP (`insights/peers.py`, off the event loop) and stores its values with the loss its
compositors' privacy maps give."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import uuid
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from badges.config import Settings
from badges.db.catalogue import load_catalogue
from badges.db.peers import (
    Budget,
    ReleasedGroup,
    complete_release,
    consenting_inputs,
    ledger_entry,
    reserve_release,
)
from badges.domain.peers import PeerInput
from badges.insights.peers import MECHANISM, Release, ReleasePlan, describe, peer_frame, plan_for, release
from badges.messages.peer_stats import PeerReleaseOutcome, PeerReleaseRequest


class PeerStatsActivities:
    def __init__(self, pool: AsyncConnectionPool, engine: AsyncEngine, settings: Settings) -> None:
        self._pool = pool
        self._engine = engine
        self._settings = settings

    @activity.defn
    async def release_peer_stats(self, release_id: uuid.UUID, request: PeerReleaseRequest) -> PeerReleaseOutcome:
        now = datetime.now(UTC)
        _, catalogue = await load_catalogue(self._engine)
        plan = plan_for(catalogue, self._settings.peer_release_epsilon, self._settings.peer_min_group_size)
        if not plan.dimensions:
            return PeerReleaseOutcome(release_id=release_id, status="empty", reason="no comparative badge is active")
        inputs = await consenting_inputs(self._pool)
        if not inputs:
            return PeerReleaseOutcome(release_id=release_id, status="empty", reason="no member consents")
        budget = Budget(self._settings.peer_release_epsilon, self._settings.peer_yearly_epsilon)
        reservation = await reserve_release(
            self._pool,
            release_id,
            plan.epsilon,
            budget,
            requested_by=request.requested_by,
            mechanism=MECHANISM,
            parameters=describe(plan),
            now=now,
        )
        if reservation.status == "refused":
            return PeerReleaseOutcome(release_id=release_id, status="refused", reason=reservation.reason)
        if reservation.status == "released":  # an earlier attempt finished
            return await self._outcome(release_id)
        result = await asyncio.to_thread(compute, inputs, plan)
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


def compute(inputs: list[PeerInput], plan: ReleasePlan) -> Release:
    """The release, in this (worker) thread; then OpenDP's objects are freed here too. Left to a
    later garbage collection, their finalisers could run inside a workflow's sandbox, which
    refuses what they call (`os.environ`)."""
    try:
        return release(peer_frame(inputs), plan)
    finally:
        gc.collect()


def record_of(result: Release) -> dict[str, object]:
    """What the ledger keeps of a release run: each query's mechanism, scale and loss, each
    phase's loss, the thresholds and how many groups were rolled up."""
    return {
        "queries": [dataclasses.asdict(query) for query in result.queries],
        "phaseEpsilons": list(result.phase_epsilons),
        "thresholds": result.thresholds,
        "rolledUp": result.rolled_up,
    }
