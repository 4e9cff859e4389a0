"""Rewards are charged to the month the workflow decided in, not the month an event claims."""

from __future__ import annotations

from datetime import UTC, datetime

from badges.activities.progress import reward_claims
from badges.db.rewards import budget_period
from badges.domain.definitions import MoneyReward, PointsReward
from badges.domain.rules import Award

BACKDATED = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)  # the sender's timestamp: last month
DECIDED = datetime(2026, 11, 1, 0, 5, tzinfo=UTC)


def award(badge_id: str, reward: PointsReward | MoneyReward | None) -> Award:
    return Award(badge_id=badge_id, name=badge_id, instance="1", awarded_at=BACKDATED, version=2, reward=reward)


def test_claims_carry_the_decision_time_and_the_reward_as_defined() -> None:
    claims = reward_claims(
        [
            award("a", PointsReward(points=5)),
            award("b", MoneyReward(amount_minor=250, currency="EUR")),
            award("c", None),
        ],
        DECIDED,
    )
    assert [(c.badge_id, c.kind, c.amount, c.currency, c.version) for c in claims] == [
        ("a", "points", 5, "", 2),
        ("b", "money", 250, "EUR", 2),
    ]
    assert {budget_period(c.awarded_at) for c in claims} == {"2026-11"}


def test_without_a_decision_time_the_award_time_is_used() -> None:
    [claim] = reward_claims([award("a", PointsReward(points=5))])
    assert budget_period(claim.awarded_at) == "2026-10"
