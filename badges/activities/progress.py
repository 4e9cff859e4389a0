"""`record_progress`: write what a member's batch decided — progress, awards and outbox rows in
one transaction, then the rewards those awards carry and the review items for held bursts."""

from __future__ import annotations

from datetime import datetime

from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from badges.db.progress import write_progress_batch
from badges.db.reviews import record_reviews
from badges.db.rewards import RewardClaim, grant_rewards
from badges.domain.definitions import MoneyReward
from badges.domain.rules import Award
from badges.messages.user_badges import ProgressBatch


def reward_claims(awards: list[Award], decided_at: datetime | None = None) -> list[RewardClaim]:
    claims = []
    for award in awards:
        reward = award.reward
        if reward is None:
            continue
        claims.append(
            RewardClaim(
                badge_id=award.badge_id,
                instance=award.instance,
                version=award.version,
                kind=reward.kind,
                amount=reward.amount_minor if isinstance(reward, MoneyReward) else reward.points,
                currency=reward.currency if isinstance(reward, MoneyReward) else "",
                awarded_at=decided_at or award.awarded_at,
            )
        )
    return claims


class ProgressActivities:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @activity.defn
    async def record_progress(self, batch: ProgressBatch) -> None:
        """Apply one batch. Every step is idempotent, so a retry after any failure completes it
        without writing anything twice: awards and rewards are unique per (member, badge, instance)."""
        await write_progress_batch(self._pool, batch.user_id, batch.batch_seq, batch.progress, batch.awards)
        await grant_rewards(self._pool, batch.user_id, reward_claims(batch.awards, batch.decided_at))
        await record_reviews(
            self._pool,
            batch.user_id,
            [(h.review_id, h.event_type, h.reason, [e.model_dump(mode="json") for e in h.events]) for h in batch.held],
            [(d.review_id, d.approved, d.resolved_by) for d in batch.resolved],
        )
