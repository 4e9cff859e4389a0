"""`award_comparative_badges`: after a release, the comparative badges it earns
(PeerStatsReleaseWorkflow's step after the release).

For each active comparative badge on a released metric, every consenting member who could reach
a target (their value at least the lowest released threshold) is placed in their groups of the
release (their finest published group in each of the badge's `comparisonGroups`, as comparisons
place them) and awarded the targets they clear by the release's uncertainty
(`insights/comparisons.py`). What is decided is kept once per release, member and badge
(`peer_awards`), then handed to each member's badge workflow (the one writer of their awards).

Delivery goes a page of members at a time (the next page read while this one is sent), with at
most `concurrency` signals in flight; each page is marked sent (or dropped) before the step
heartbeats its position. A retried step resumes after that position without deciding again; a
page signalled but not yet marked is sent again, which the badge workflow records once (the
instances name the release). At send time each member is checked again: one who withdrew
`peer_comparison` consent, or whose erasure began, since the release read their row is not
signalled (a signal-with-start would start a workflow for them) and the award is recorded as
dropped; one whose erasure began while the page was signalled has the workflow the signal may
have started ended (`activities/erasure.end_workflows_of_erased`).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from badges.activities.erasure import end_workflows_of_erased
from badges.config import Settings
from badges.db.catalogue import load_catalogue
from badges.db.consents import consenting_members
from badges.db.keys import KeyStore, KeyUnavailableError
from badges.db.members import reachable_members
from badges.db.peer_awards import (
    PeerAward,
    drop_peer_awards,
    keep_peer_awards,
    mark_peer_awards_sent,
    unsent_peer_awards,
)
from badges.db.peer_reads import Candidate, award_candidates, release_summary
from badges.db.peers import SCOPE, released_groups
from badges.domain.definitions import BadgeDefinition, ComparativeRule
from badges.domain.financial import Verdict
from badges.insights import comparisons
from badges.messages.comparisons import ComparativeAwardsOutcome, ComparativeResults
from badges.temporal import Client, record_comparative_results

# Members' awards handed over a page at a time (one read, one consent and erasure check, one
# mark per page), with at most SEND_CONCURRENCY signals in flight (bench/peer_awards.py).
SEND_BATCH = 500
SEND_CONCURRENCY = 32
# Candidates read and decided a page at a time (a release may have millions of members).
CANDIDATE_PAGE = 50_000
WITHDRAWN = "peer_comparison consent ended before the award was sent"
ERASED = "the member's erasure began before the award was sent"


class PeerAwardActivities:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        engine: AsyncEngine,
        temporal: Client,
        settings: Settings,
        keys: KeyStore,
        *,
        batch: int = SEND_BATCH,
        concurrency: int = SEND_CONCURRENCY,
    ) -> None:
        self._pool = pool
        self._engine = engine
        self._temporal = temporal
        self._settings = settings
        self._keys = keys
        self._batch = batch
        self._concurrency = concurrency

    @activity.defn
    async def award_comparative_badges(self, release_id: uuid.UUID) -> ComparativeAwardsOutcome:
        release = await release_summary(self._pool, release_id)
        if release is None:
            return ComparativeAwardsOutcome(release_id=release_id)
        revision, catalogue = await load_catalogue(self._engine)
        # Heartbeats carry [members decided, last member and badge handed over (or dropped)].
        details = activity.info().heartbeat_details
        if details:
            members = int(details[0])
            after = (uuid.UUID(details[1]), str(details[2])) if details[1] else None
        else:
            members = await self._decide_all(release_id, revision, catalogue)
            after = None
            activity.heartbeat(members, None, None)
        sent, dropped = await self._send(release_id, revision, members, after)
        return ComparativeAwardsOutcome(release_id=release_id, members=members, sent=sent, dropped=dropped)

    async def _decide_all(self, release_id: uuid.UUID, revision: int, catalogue: Sequence[BadgeDefinition]) -> int:
        """Decide every badge's awards and keep them (`peer_awards`); how many members won any."""
        badges = [b for b in catalogue if b.active and isinstance(b.rule, ComparativeRule)]
        groups = [
            (g.dimension, g.level, g.key, comparisons.parse_statistics(g.stats))
            for g in await released_groups(self._pool, release_id)
        ]
        published = {(dimension, level, key): stats for dimension, level, key, stats in groups}
        decided: list[PeerAward] = []
        for badge in badges:
            config = badge.config.comparative_analytics
            if config is None or not isinstance(badge.rule, ComparativeRule):
                continue
            floor = comparisons.lowest_threshold(badge, [(d, s) for d, _, _, s in groups])
            if floor == math.inf:  # nothing released that anyone could clear
                continue
            after: uuid.UUID | None = None
            while candidates := await award_candidates(
                self._pool, float("-inf") if floor is None else floor, after, CANDIDATE_PAGE
            ):
                after = candidates[-1].user_id
                decided.extend(
                    await asyncio.to_thread(self._decide, badge, revision, release_id, published, candidates)
                )
                activity.heartbeat()
        await keep_peer_awards(self._pool, release_id, decided, datetime.now(UTC))
        return len({a.user_id for a in decided})

    @staticmethod
    def _decide(
        badge: BadgeDefinition,
        revision: int,
        release_id: uuid.UUID,
        published: dict[tuple[str, str, str], comparisons.GroupStatistics],
        candidates: list[Candidate],
    ) -> list[PeerAward]:
        """The awards of a page of candidates: each placed in their finest published group of
        each of the badge's dimensions, and decided there."""
        config = badge.config.comparative_analytics
        assert config is not None
        placed: list[list[tuple[str, str, str, comparisons.GroupStatistics]]] = [[] for _ in candidates]
        members = [(c.inputs.figures, c.inputs.other) for c in candidates]
        for dimension in config.comparison_groups:
            for index, mine in enumerate(comparisons.members_groups(members, dimension)):
                chosen = next(((lv, k) for lv, k in mine if (dimension, lv, k) in published), None)
                if chosen is not None:
                    placed[index].append((dimension, *chosen, published[(dimension, *chosen)]))
        decided = []
        for candidate, mine in zip(candidates, placed, strict=True):
            value = candidate.inputs.figures.savings_rate
            decision = None if value is None else comparisons.decide_comparative(badge, value, mine)
            if decision is not None:
                decided.append(
                    PeerAward(
                        user_id=candidate.user_id,
                        badge_id=badge.badge_id,
                        version=badge.version,
                        instances=[f"{name}-{release_id}" for name in decision.instances],
                        decided={**decision.document(), "catalogueRevision": revision},
                    )
                )
        return decided

    async def _send(
        self, release_id: uuid.UUID, revision: int, members: int, after: tuple[uuid.UUID, str] | None
    ) -> tuple[int, int]:
        """Hand every award of the release not yet sent or dropped, after `after`, to its
        member's badge workflow, a page at a time. How many members were signalled, and how
        many awards were dropped, by this run."""
        sent = dropped = 0
        limit = asyncio.Semaphore(self._concurrency)
        page = await unsent_peer_awards(self._pool, release_id, after, self._batch)
        while page:
            after = (page[-1].user_id, page[-1].badge_id)
            upcoming = asyncio.ensure_future(unsent_peer_awards(self._pool, release_id, after, self._batch))
            try:
                signalled, gone = await self._send_page(release_id, revision, page, limit)
                now = datetime.now(UTC)
                await mark_peer_awards_sent(self._pool, release_id, [a for a in page if a.user_id in signalled], now)
                await drop_peer_awards(self._pool, release_id, gone, now)
            except BaseException:
                upcoming.cancel()
                raise
            sent += len(signalled)
            dropped += len(gone)
            activity.heartbeat(members, str(after[0]), after[1], sent, dropped)
            page = await upcoming
        return sent, dropped

    async def _send_page(
        self, release_id: uuid.UUID, revision: int, page: list[PeerAward], limit: asyncio.Semaphore
    ) -> tuple[set[uuid.UUID], list[tuple[uuid.UUID, str, str]]]:
        """Signal the page's members that may still have the award; the members signalled, and
        the awards dropped (member, badge, why)."""
        by_member: dict[uuid.UUID, list[PeerAward]] = {}
        for award in page:
            by_member.setdefault(award.user_id, []).append(award)
        # Read now, past every cache: the release read these members' rows long ago.
        reachable = await reachable_members(self._engine, by_member)
        consenting = await consenting_members(self._pool, reachable, SCOPE, datetime.now(UTC))
        why: dict[uuid.UUID, str] = {
            m: ERASED if m not in reachable else WITHDRAWN for m in set(by_member) - consenting
        }

        async def send(member: uuid.UUID) -> None:
            async with limit:
                if not await self._signal(release_id, revision, member, by_member[member]):
                    why[member] = ERASED

        await asyncio.gather(*(send(member) for member in consenting))
        signalled = consenting - set(why)
        for member in await end_workflows_of_erased(self._engine, self._temporal, self._keys, signalled):
            why[member] = ERASED
        gone = [(a.user_id, a.badge_id, why[a.user_id]) for a in page if a.user_id in why]
        return set(by_member) - set(why), gone

    async def _signal(self, release_id: uuid.UUID, revision: int, member: uuid.UUID, awards: list[PeerAward]) -> bool:
        """Hand the member's awards to their badge workflow (started if not running). False when
        the member's key is gone: erased since the check (never seal with a destroyed key)."""
        verdicts = [
            Verdict(
                badge_id=a.badge_id,
                version=a.version,
                value=int(a.decided.get("percentile") or 0),
                target=min(int(name.split("-")[0][1:]) for name in a.instances),
                earned=list(a.instances),
            )
            for a in awards
        ]
        decided_under = max(int(a.decided.get("catalogueRevision") or revision) for a in awards)
        try:
            await record_comparative_results(
                self._temporal,
                self._settings,
                member,
                ComparativeResults(release_id=release_id, verdicts=verdicts, catalogue_revision=decided_under),
            )
        except KeyUnavailableError:
            self._keys.forget(str(member))
            return False
        return True
