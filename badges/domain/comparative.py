"""Comparative badges recorded in a member's badge state: a release's verdicts, each earned
instance awarded once, ever. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from badges.domain.definitions import BadgeDefinition, ComparativeRule
from badges.domain.financial import Verdict, apply_verdicts
from badges.domain.rules import BadgeState, Evaluation


def record_comparative(
    state: BadgeState, verdicts: Sequence[Verdict], catalogue: Sequence[BadgeDefinition], now: datetime
) -> Evaluation:
    """Record a release's comparative verdicts as behaviour verdicts are recorded (each earned
    instance once; a verdict of another version or a badge gone from the catalogue dropped), but
    outside the behaviour evaluations' order: a release is not an evaluation, so it neither
    waits for one nor makes a later one look stale. Only comparative badges are touched."""
    comparative = {badge.badge_id for badge in catalogue if isinstance(badge.rule, ComparativeRule)}
    kept = [verdict for verdict in verdicts if verdict.badge_id in comparative]
    outcome = apply_verdicts(state, kept, catalogue, state.financial_seq + 1, now)
    return outcome.model_copy(update={"state": outcome.state.model_copy(update={"financial_seq": state.financial_seq})})
