"""Response bodies of the public contract, camelCase on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class EventReceipt(WireModel):
    status: Literal["accepted", "duplicate"]
    id: str


class BadgeView(WireModel):
    badge_id: str
    name: str
    description: str
    target: int


class BadgeProgressView(BadgeView):
    progress: int
    awarded: bool
    awarded_at: datetime | None = None


class MyBadges(WireModel):
    user_id: uuid.UUID
    badges: list[BadgeProgressView]


class Catalogue(WireModel):
    badges: list[BadgeView]


class Me(WireModel):
    user_id: uuid.UUID
    scopes: list[str]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sub: str
    scopes: list[Literal["user", "operator", "compliance", "admin"]] = ["user"]


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class ProgrammeMetrics(WireModel):
    members: int
    events_accepted: int
    awards_by_badge: dict[str, int]
    last_outbox_id: int
    stream_subscribers: int
