"""What an evaluation has to tell the member, as `insight` messages on their stream: a badge within
reach, a decision waiting on a category they may want to check, a trend worth knowing, spending
that looks unusual, a goal at risk (once a month), bank data that is delayed or patchy.

Each notice has a stable `key`: the evaluation sends only notices whose key the previous one did
not have, so a member hears each thing once, not after every sync. The keys are compared by their
keyed digests (kept beside the sealed document), so the previous evaluation is never opened. No
merchant names, no descriptions: the outbox keeps these until its retention ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from badges.domain.financial import Verdict
from badges.insights.picture import Picture

IN_REACH = 0.75  # a badge is within reach at three quarters of its target
TREND_DOWN = -0.1  # spending down by a tenth month on month is worth a word
TREND_UP = 0.25


def notices(picture: Picture, verdicts: Sequence[Verdict], names: Mapping[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for verdict in verdicts:
        name = names.get(verdict.badge_id, verdict.badge_id)
        if verdict.waiting and verdict.waiting.startswith("please check"):
            found.append(
                {
                    "key": f"check:{verdict.badge_id}",
                    "kind": "check-category",
                    "badgeId": verdict.badge_id,
                    "message": f"{name}: {verdict.waiting}.",
                }
            )
        elif not verdict.earned and verdict.target > 0 and verdict.value >= IN_REACH * verdict.target:
            found.append(
                {
                    "key": f"reach:{verdict.badge_id}:{verdict.target}",
                    "kind": "badge-in-reach",
                    "badgeId": verdict.badge_id,
                    "value": verdict.value,
                    "target": verdict.target,
                    "message": f"{name} is within reach: {round(100 * verdict.value / verdict.target)} % of the way.",
                }
            )
    complete = [month for month in picture.figures if month.complete]
    if len(complete) >= 2:
        last, before = complete[-1], complete[-2]
        if before.spending_minor > 0:
            change = (last.spending_minor - before.spending_minor) / before.spending_minor
            if change <= TREND_DOWN or change >= TREND_UP:
                direction = "down" if change < 0 else "up"
                found.append(
                    {
                        "key": f"trend:spending:{last.month.isoformat()}",
                        "kind": "trend",
                        "month": last.month.isoformat(),
                        "change": round(change, 3),
                        "message": f"Your spending in {last.month:%B} was {direction} {abs(round(100 * change))} % "
                        f"on {before.month:%B}.",
                    }
                )
    for unusual in picture.unusual:
        found.append(
            {
                "key": f"unusual:{unusual.day.isoformat()}:{unusual.category.value}:{unusual.amount_minor}",
                "kind": "unusual-spending",
                "category": unusual.category.value,
                "message": unusual.reason,
            }
        )
    for progress in picture.goals:
        measured = progress.save if progress.save is not None else progress.limit
        if measured is not None and measured.at_risk:
            found.append(
                {
                    "key": f"goal-at-risk:{progress.goal.goal_id}:{progress.as_of:%Y-%m}",
                    "kind": "goal-at-risk",
                    "goalId": progress.goal.goal_id,
                    "message": measured.reason,
                }
            )
    for issue in picture.quality.issues:
        found.append(
            {
                "key": f"quality:{issue.check}",
                "kind": "data-quality",
                "severity": issue.severity,
                "message": issue.reason,
            }
        )
    return found


def fresh(found: Sequence[dict[str, Any]], digests: Sequence[bytes], given: AbstractSet[bytes]) -> list[dict[str, Any]]:
    """The notices not already given by the previous evaluation: `digests` are the keyed digests
    of `found`'s keys (in order), `given` those of the notices it gave."""
    return [notice for notice, digest in zip(found, digests, strict=True) if digest not in given]
