"""Response bodies of the public contract, camelCase on the wire."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from badges.domain.event_data import MAX_SAFE_NUMBER
from badges.domain.wire import WireModel

# Largest bigserial id; a larger `afterId` is refused rather than overflowing the query.
MAX_ROW_ID = 2**63 - 1
UNIX_TIME = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _iso_8601(value: object) -> object:
    """Pydantic reads a number, or a string of one, as Unix time (`?since=20260101` would be a day
    in August 1970); the contract says ISO 8601, so that is refused rather than misread."""
    if isinstance(value, int | float) or (isinstance(value, str) and UNIX_TIME.fullmatch(value)):
        raise ValueError("must be an ISO 8601 date or date-time, not a number")
    return value


# Dates and times that callers send (query filters): ISO 8601 only, and a time with its offset.
IsoDate = Annotated[date, BeforeValidator(_iso_8601)]
IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_8601)]


class EventAcceptance(WireModel):
    """The answer to an event sent in: taken now (202), or already taken under this id (200)."""

    status: Literal["accepted", "duplicate"]
    id: str


class BadgeView(WireModel):
    badge_id: str
    name: str
    description: str
    kind: str
    version: int
    # The count, streak length or top tier progress goes towards; null for bank-data badges.
    target: int | None
    tiers: list[str] | None = None
    reward: dict[str, Any] | None = None


class AwardView(WireModel):
    instance: str  # "1", a tier name, or a percentile target such as "p95"
    version: int
    awarded_at: datetime


class BadgeProgressView(BadgeView):
    progress: int
    # What the current progress counts towards (the next tier's target for tiered badges).
    progress_target: int | None
    awarded: bool
    awarded_at: datetime | None = None  # the first award
    awards: list[AwardView]


class MyBadges(WireModel):
    user_id: uuid.UUID
    badges: list[BadgeProgressView]


class CatalogueView(WireModel):
    revision: int
    badges: list[BadgeView]


class StaffBadgeView(BadgeView):
    active: bool  # an inactive badge is kept (awards keep their version) and earns nothing new


class StaffCatalogueView(WireModel):
    revision: int
    badges: list[StaffBadgeView]  # every badge, active or not, at its newest version


class WorkflowLinkView(WireModel):
    kind: str  # badges, behaviour, consent, export, erasure, bank sync
    workflow_id: str
    url: str  # the Temporal Web UI's list of this workflow id's runs


class MemberWorkflowsView(WireModel):
    """A member's workflows in the Temporal Web UI, by their internal id (nothing else names them)."""

    member_id: uuid.UUID
    temporal_ui_url: str
    namespace: str
    all_workflows_url: str  # every workflow whose id starts with the member's prefix
    workflows: list[WorkflowLinkView]


class Me(WireModel):
    user_id: uuid.UUID
    scopes: list[str]


def known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    # A folder of the zone database ("Europe") or a name past the file system's limit is an
    # OSError, not a ValueError: without it here, a 500.
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/London)") from error
    return value


POSTCODE_DISTRICT = re.compile(r"[A-Za-z]{1,2}[0-9][A-Za-z0-9]?")


class Demographics(WireModel):
    """Who the member is, coarsely: only ever used to form peer groups, only held with
    `demographics` consent, stored sealed with the member's key."""

    model_config = ConfigDict(extra="forbid")

    postcode: str | None = Field(
        None,
        description="The postcode district (outward code) only, e.g. SW1A: never the full postcode.",
        examples=["SW1A"],
    )
    age_range: Literal["18-24", "25-34", "35-44", "45-54", "55-64", "65+"] | None = None
    dependants: StrictInt | None = Field(None, ge=0, le=20)  # strict: `false` is not 0
    salary_bracket: Literal["<20k", "20-30k", "30-45k", "45-60k", "60-80k", "80-100k", "100k+"] | None = None

    @field_validator("postcode")
    @classmethod
    def _district_only(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not POSTCODE_DISTRICT.fullmatch(value):
            raise ValueError("the postcode district only (its first half, e.g. SW1A), never the full postcode")
        return value.upper()


class Profile(WireModel):
    timezone: str = Field(description="An IANA time zone, e.g. Europe/London", examples=["Europe/London"])
    demographics: Demographics | None = None


class ProfileUpdate(WireModel):
    """Fields left out stay as they are; `demographics: null` deletes them."""

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = Field(
        None, max_length=64, description="An IANA time zone, e.g. Europe/London", examples=["Europe/London"]
    )
    demographics: Demographics | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return known_zone(value) if value is not None else None


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
    rewards_by_status: dict[str, int]  # granted / deferred / withheld
    reward_budgets: list[BudgetView]  # this month's use of each budget
    reviews_pending: int
    dead_letters: int  # work members' workflows set aside (GET /v1/admin/dead-letters)


class MetricReadingView(WireModel):
    """One success metric over one window."""

    label: str  # "last 30 days", "2026-05"
    start: datetime
    end: datetime  # exclusive
    partial: bool  # the current month, to date
    value: float | None  # a share (0..1) or, for an uplift, the ratio less one; null: nobody to count
    numerator: float
    denominator: float
    met: bool | None  # against the target; null without a value or a target


class SuccessMetricView(WireModel):
    id: str
    name: str
    definition: str  # exactly what is counted, and over which window
    unit: Literal["share", "uplift"]
    target: float | None
    target_text: str
    numerator: str  # what the readings' numerators count
    denominator: str
    current: MetricReadingView  # the last 30 days (behaviour improvement: the last complete month)
    monthly: list[MetricReadingView]  # oldest first


class SuccessMetrics(WireModel):
    computed_at: datetime
    metrics: list[SuccessMetricView]


class DefinitionSaved(WireModel):
    badge_id: str
    version: int
    created: bool  # false: the newest version already said exactly this
    definition: dict[str, Any]
    # Signing secret for this badge's award webhooks: shown once, when first created.
    webhook_secret: str | None = None


class WebhookSecretView(WireModel):
    badge_id: str
    webhook_secret: str


class BadgeVersionView(WireModel):
    version: int
    created_by: str
    created_at: datetime
    definition: dict[str, Any]


class ReevaluationView(WireModel):
    workflow_id: str
    badge_id: str
    version: int
    status: str
    members_signalled: int
    done: bool


class RewardView(WireModel):
    badge_id: str
    instance: str
    version: int
    kind: Literal["points", "money"]
    amount: int
    currency: str | None
    status: Literal["granted", "deferred", "withheld"]
    period: str
    reason: str
    created_at: datetime
    granted_at: datetime | None


class MyRewards(WireModel):
    rewards: list[RewardView]
    points_granted: int
    money_granted_minor: dict[str, int]  # by currency
    pending: int  # deferred: waiting for budget


class BudgetSpec(WireModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["points", "money"]
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    # Strict: a JSON `false` or `"5"` is not a limit. Within JavaScript's exact integers.
    monthly_limit: StrictInt = Field(ge=0, le=MAX_SAFE_NUMBER)
    policy: Literal["defer", "withhold"]

    @model_validator(mode="after")
    def _currency_for_money(self) -> BudgetSpec:
        if (self.kind == "money") != (self.currency is not None):
            raise ValueError("currency is required for money budgets and not allowed for points")
        return self


class BudgetView(WireModel):
    scope: str
    kind: str
    currency: str | None
    monthly_limit: int
    policy: str
    period: str
    used: int
    remaining: int


class ReviewItemView(WireModel):
    """A review item: a held burst of events, or a financial pattern in a member's bank data
    (see docs/api/insights.md, "Savings round trips")."""

    review_id: str
    user_id: uuid.UUID
    kind: Literal["held_burst", "financial"] = "held_burst"
    event_type: str  # the held events' type, or the pattern's (`savings_round_trip`)
    reason: str
    event_count: int  # held events, or the pattern's transactions
    event_ids: list[str]
    status: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    # A financial pattern's details (amounts, days, transactions), opened for the one item asked
    # for by id (`GET /v1/admin/review-queue/{reviewId}`); null in listings.
    detail: dict[str, Any] | None = None


class DeadLetterView(WireModel):
    """Work a member's workflow could not apply and set aside (see docs/architecture.md, "Dead letters")."""

    id: int
    user_id: uuid.UUID
    kind: Literal["event", "decision", "reevaluation"]
    reason: str  # what failed, without the data (e.g. "record_progress: DataError (SQLSTATE 22P05)")
    event_ids: list[str]  # the events it held (NUL and lone surrogates written as escapes)
    review_id: str | None  # the review item, for a reviewer's decision
    created_at: datetime


class DeadLetterPage(WireModel):
    dead_letters: list[DeadLetterView]
    next_after_id: int | None  # pass as `afterId` for the next page; null when this page was the last


class ReviewDecisionRequest(WireModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: `0`, `"no"` or `"false"` is not a decision (each was taken as a rejection).
    approve: StrictBool
