"""Real-time events as members and event systems send them, and as workflows receive them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

EventType = Literal["attendance", "voting", "tool_usage"]


class RealTimeEvent(BaseModel):
    """The seed's `RealTimeEvent`, as it arrives on the wire (camelCase)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")
    type: EventType
    user_id: str = Field(alias="userId", min_length=1, max_length=256)
    event_data: dict[str, Any] = Field(default_factory=dict, alias="eventData")
    timestamp: AwareDatetime


class BadgeEvent(BaseModel):
    """What the member's workflow receives: the event without the external user id.

    The external id (a token `sub`, possibly an email) never enters Temporal; the workflow id
    carries the internal UUID instead.
    """

    id: str
    type: EventType
    event_data: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime

    @classmethod
    def from_wire(cls, event: RealTimeEvent) -> BadgeEvent:
        return cls(id=event.id, type=event.type, event_data=event.event_data, timestamp=event.timestamp)
