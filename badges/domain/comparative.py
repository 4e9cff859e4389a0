"""Comparative badges recorded in a member's badge state: a release's verdicts, each earned
instance awarded once, ever, and those that cannot be recorded, with why. Pure."""

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


def unrecordable(
    state: BadgeState, verdicts: Sequence[Verdict], catalogue: Sequence[BadgeDefinition]
) -> list[tuple[Verdict, str]]:
    """The verdicts `record_comparative` drops, each with why: the badge is gone from the
    catalogue, inactive or not comparative, or it has another version than the one the release
    decided on (an admin changed it between the decision and this workflow applying it). A
    verdict whose instances the member holds already (sent again after it was recorded) is not
    dropped: it was delivered.

    Such a verdict is dropped and the drop recorded, not decided again under the badge's current
    version: the release decided on the definition it read (its targets, its groups, the
    uncertainty it asked to clear), and nothing checked the member against the new one, so
    recording it under the new version would claim what no one decided. The next release decides
    under the current version; the member loses this release's instance only."""
    by_id = {badge.badge_id: badge for badge in catalogue}
    dropped = []
    for verdict in verdicts:
        badge = by_id.get(verdict.badge_id)
        held = state.badges.get(verdict.badge_id)
        if held is not None and all(instance in held.awarded for instance in verdict.earned):
            continue
        if badge is None or not badge.active:
            dropped.append((verdict, f"{verdict.badge_id} is no longer an active badge"))
        elif not isinstance(badge.rule, ComparativeRule):
            dropped.append((verdict, f"{verdict.badge_id} is no longer a comparative badge"))
        elif badge.version != verdict.version:
            dropped.append(
                (
                    verdict,
                    f"decided on {verdict.badge_id} version {verdict.version}; the badge was at version"
                    f" {badge.version} when the member's badge workflow applied it",
                )
            )
    return dropped
