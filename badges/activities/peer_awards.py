"""`award_comparative_badges`: after a release, the comparative badges it earns
(PeerStatsReleaseWorkflow's step after the release).

For each active comparative badge on a released metric, every consenting member who could reach
a target (their value at least the lowest released threshold) is placed in their groups of the
release (their finest published group in each of the badge's `comparisonGroups`, as comparisons
place them) and awarded the targets they clear by the release's uncertainty
(`insights/comparisons.py`). What is decided is kept once per release, member and badge
(`peer_awards`), then handed to each member's badge workflow (the one writer of their awards)
and marked sent: a retried step sends only what was not sent, and a verdict sent twice is
recorded once (its instances name the release).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from badges.config import Settings
from badges.db.catalogue import load_catalogue
from badges.db.peer_awards import PeerAward, keep_peer_awards, mark_peer_awards_sent, unsent_peer_awards
from badges.db.peer_reads import Candidate, award_candidates, release_summary
from badges.db.peers import released_groups
from badges.domain.definitions import BadgeDefinition, ComparativeRule
from badges.domain.financial import Verdict
from badges.insights import comparisons
from badges.messages.comparisons import ComparativeAwardsOutcome, ComparativeResults
from badges.temporal import Client, record_comparative_results

SEND_BATCH = 200
# Candidates read and decided a page at a time (a release may have millions of members).
CANDIDATE_PAGE = 50_000
# Signals to members' workflows in flight at once.
SEND_CONCURRENCY = 16


class PeerAwardActivities:
    def __init__(self, pool: AsyncConnectionPool, engine: AsyncEngine, temporal: Client, settings: Settings) -> None:
        self._pool = pool
        self._engine = engine
        self._temporal = temporal
        self._settings = settings

    @activity.defn
    async def award_comparative_badges(self, release_id: uuid.UUID) -> ComparativeAwardsOutcome:
        release = await release_summary(self._pool, release_id)
        if release is None:
            return ComparativeAwardsOutcome(release_id=release_id)
        revision, catalogue = await load_catalogue(self._engine)
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
        sent = await self._send(release_id, revision)
        return ComparativeAwardsOutcome(release_id=release_id, members=len({a.user_id for a in decided}), sent=sent)

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

    async def _send(self, release_id: uuid.UUID, revision: int) -> int:
        """Hand every unsent award of the release to its member's badge workflow, a batch at a
        time, marking each batch sent once every signal of it was taken."""
        sent = 0
        limit = asyncio.Semaphore(SEND_CONCURRENCY)
        while batch := await unsent_peer_awards(self._pool, release_id, SEND_BATCH):
            by_member: dict[uuid.UUID, list[PeerAward]] = {}
            for award in batch:
                by_member.setdefault(award.user_id, []).append(award)

            async def send(member: uuid.UUID, awards: list[PeerAward]) -> None:
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
                revision_of = max([int(a.decided.get("catalogueRevision") or revision) for a in awards])
                async with limit:
                    await record_comparative_results(
                        self._temporal,
                        self._settings,
                        member,
                        ComparativeResults(release_id=release_id, verdicts=verdicts, catalogue_revision=revision_of),
                    )

            await asyncio.gather(*(send(member, awards) for member, awards in by_member.items()))
            await mark_peer_awards_sent(self._pool, release_id, batch, datetime.now(UTC))
            sent += len(by_member)
            activity.heartbeat(sent)
        return sent
