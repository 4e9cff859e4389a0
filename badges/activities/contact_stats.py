"""`release_contact_stats`: the contacts release, the step of PeerStatsReleaseWorkflow after the
main release (its own entry in the privacy ledger, in the same yearly budget).

When no contacts group could be published at the configured budget (decided from public
parameters: `ContactsPlan.futile`), nothing is measured and nothing reserved; every owner is told
why. Otherwise it reads every group's key and consenting contacts in one query, reserves the
release's ε (or records why the budget refuses it), computes with OpenDP off the event loop,
stores the published groups in `peer_stats` (dimension `contacts`) with the loss the measurements'
privacy maps give, and what was decided for each group, for its owner."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import uuid
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from badges.config import Settings
from badges.db.contacts import (
    CONTACTS_DIMENSION,
    ContactRows,
    GroupOutcome,
    contact_rows,
    record_outcomes,
    record_suppressed_everywhere,
)
from badges.db.peers import (
    Budget,
    ReleasedGroup,
    cancel_reservation,
    complete_release,
    ledger_entry,
    reserve_release,
)
from badges.domain.contacts import ContactsPlan
from badges.insights.contacts import (
    MECHANISM,
    ContactsRelease,
    contacts_frame,
    describe,
    release_contacts,
)
from badges.messages.peer_stats import ContactsReleaseOutcome, PeerReleaseRequest

EMPTY = "no member has contacts"


class ContactStatsActivities:
    def __init__(self, pool: AsyncConnectionPool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings

    def plan(self) -> ContactsPlan:
        return ContactsPlan(
            max_contacts=self._settings.contacts_max,
            min_group_size=self._settings.contacts_min_group_size,
            epsilon=self._settings.contacts_release_epsilon,
        )

    @activity.defn
    async def release_contact_stats(self, release_id: uuid.UUID, request: PeerReleaseRequest) -> ContactsReleaseOutcome:
        plan = self.plan()
        rows = await contact_rows(self._pool, plan.max_contacts)
        if not rows.keys:
            # As the main release does (`peer_stats.release_peer_stats`): what an earlier attempt
            # reserved is cancelled; what it stored stands.
            if await cancel_reservation(self._pool, release_id, EMPTY) == "released":
                return await self._outcome(release_id)
            return ContactsReleaseOutcome(release_id=release_id, status="empty", reason=EMPTY)
        futile = plan.futile()
        if futile is not None:
            await record_suppressed_everywhere(self._pool, rows.keys, futile)
            return ContactsReleaseOutcome(
                release_id=release_id, status="futile", reason=futile, suppressed=len(rows.keys)
            )
        reservation = await reserve_release(
            self._pool,
            release_id,
            plan.epsilon,
            Budget(plan.epsilon, self._settings.peer_yearly_epsilon),
            requested_by=request.requested_by,
            mechanism=MECHANISM,
            parameters=describe(plan),
            now=datetime.now(UTC),
        )
        if reservation.status == "refused":
            return ContactsReleaseOutcome(release_id=release_id, status="refused", reason=reservation.reason)
        if reservation.status == "released":  # an earlier attempt finished
            return await self._outcome(release_id)
        result = await asyncio.to_thread(compute, rows, plan)
        published = [g for g in result.groups if g.released]
        await record_outcomes(
            self._pool,
            release_id,
            {
                g.key: GroupOutcome("released" if g.released else "suppressed", g.reason, g.noisy_count)
                for g in result.groups
            },
        )
        await complete_release(
            self._pool,
            release_id,
            epsilon=result.epsilon,
            delta=0.0,
            population=result.population,
            parameters={**describe(plan), "queries": [dataclasses.asdict(q) for q in result.queries]},
            groups=[
                ReleasedGroup(CONTACTS_DIMENSION, CONTACTS_DIMENSION, g.key, g.noisy_count, dict(g.values))
                for g in published
            ],
            now=datetime.now(UTC),
        )
        return ContactsReleaseOutcome(
            release_id=release_id,
            status="released",
            epsilon=result.epsilon,
            groups=len(published),
            suppressed=len(result.groups) - len(published),
        )

    async def _outcome(self, release_id: uuid.UUID) -> ContactsReleaseOutcome:
        entry = await ledger_entry(self._pool, release_id)
        assert entry is not None
        return ContactsReleaseOutcome(
            release_id=release_id, status="released", epsilon=entry.epsilon, groups=entry.groups_released or 0
        )


def compute(rows: ContactRows, plan: ContactsPlan) -> ContactsRelease:
    """The release, in this (worker) thread; OpenDP's objects are freed here too (see
    `activities/peer_stats.compute`)."""
    try:
        return release_contacts(contacts_frame(rows.groups, rows.savings_rates), rows.keys, plan)
    finally:
        gc.collect()
