"""Real-time events as members and event systems send them, and as workflows receive them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from badges.domain.event_data import event_data_violation, text_problem

EventType = Literal["attendance", "voting", "tool_usage"]
ID_MAX_LENGTH = 128


def _bounded_event_data(data: dict[str, Any]) -> dict[str, Any]:
    """`eventData` within the bounds of `badges.domain.event_data`; a violation is a validation
    error located where it is (`eventData.<key>.<index>…`), so the 422 names the field."""
    violation = event_data_violation(data)
    if violation is None:
        return data
    error = InitErrorDetails(
        type=PydanticCustomError(violation.code, violation.message),
        loc=violation.path,
        input=None,  # never quoted back: it may be what cannot be encoded
    )
    raise ValidationError.from_exception_data("eventData", [error])


def _storable_text(text: str) -> str:
    if problem := text_problem(text):
        raise PydanticCustomError("invalid_text", problem)
    return text


BoundedEventData = Annotated[dict[str, Any], AfterValidator(_bounded_event_data)]
StorableText = Annotated[str, AfterValidator(_storable_text)]


class RealTimeEvent(BaseModel):
    """The seed's `RealTimeEvent`, as it arrives on the wire (camelCase)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=r"^[A-Za-z0-9._:\-]+$")
    type: EventType
    user_id: StorableText = Field(alias="userId", min_length=1, max_length=256)
    # Bounded (depth, sizes, Unicode, numbers) so that what intake accepts the worker decodes and
    # the database stores; see badges/domain/event_data.py.
    event_data: BoundedEventData = Field(default_factory=dict, alias="eventData")
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
    # The event's calendar date in the member's time zone, as the API computed it; streaks count
    # these days. None in events queued before the API sent it: then the timestamp's own date.
    local_date: date | None = None
    # The catalogue revision the API accepted the event under: a member's workflow holding an
    # older one loads the newer catalogue before counting the event.
    catalogue_revision: int = 0
    # When the API accepted it (the server's clock, not the sender's): the anti-gaming screen
    # measures bursts by this, so events processed late after a backlog are not a burst.
    received_at: datetime | None = None

    @property
    def day(self) -> date:
        """The member's calendar day of the event."""
        return self.local_date if self.local_date is not None else self.timestamp.date()

    @classmethod
    def from_wire(cls, event: RealTimeEvent) -> BadgeEvent:
        return cls(id=event.id, type=event.type, event_data=event.event_data, timestamp=event.timestamp)
