"""Badge definitions: what a badge counts and when it is earned.

The first catalogue holds count badges only; later kinds (streaks, tiers, windows, banking
behaviour) extend `BadgeDefinition` with their own rule models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from badges.domain.events import EventType


class CountRule(BaseModel):
    """Earned when `target` matching events have been counted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["count"] = "count"
    event_type: EventType
    target: int = Field(gt=0)
    # Only events whose eventData holds all of these key/value pairs count.
    event_data_match: dict[str, Any] = Field(default_factory=dict)


class BadgeDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    badge_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")
    name: str
    description: str
    rule: CountRule


DEFAULT_CATALOGUE: tuple[BadgeDefinition, ...] = (
    BadgeDefinition(
        badge_id="calculator-explorer",
        name="Calculator explorer",
        description="Use a financial calculator 3 times.",
        rule=CountRule(event_type="tool_usage", target=3),
    ),
    BadgeDefinition(
        badge_id="regular-attendee",
        name="Regular attendee",
        description="Attend 3 events.",
        rule=CountRule(event_type="attendance", target=3),
    ),
    BadgeDefinition(
        badge_id="active-voter",
        name="Active voter",
        description="Vote on 5 propositions.",
        rule=CountRule(event_type="voting", target=5),
    ),
)


def catalogue_by_id(catalogue: tuple[BadgeDefinition, ...] = DEFAULT_CATALOGUE) -> dict[str, BadgeDefinition]:
    return {badge.badge_id: badge for badge in catalogue}
