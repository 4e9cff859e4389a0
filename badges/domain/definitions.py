"""Badge definitions as data: the seed's `AdvancedBadgeConfig` family, the rule kinds and rewards.

Operators write these (a catalogue file, `PUT /v1/admin/badges/{badge_id}`); the wire keeps the
seed's camelCase field names, and anything unknown or inconsistent is refused with the field named.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, ConfigDict, Field, field_validator, model_validator

from badges.domain.banking import ProviderName
from badges.domain.categories import SpendingCategory
from badges.domain.events import BoundedEventData, EventType
from badges.domain.wire import WireModel

Period = Literal["monthly", "quarterly", "yearly"]
# `junk_food` is the seed's name for what the spending taxonomy calls `fast_food`; both are read.
BehaviourCategory = Literal["savings", "spending", "gambling", "junk_food", "fast_food"]
# `segment`: "people like you"; `contacts` is released by its own step (both in docs/api/peers.md).
ComparisonGroup = Literal["postcode", "salary_bracket", "dependants", "contacts", "segment"]
# Categories where spending less is the better behaviour; for `savings` more is better.
HARMFUL_CATEGORIES: frozenset[str] = frozenset({"spending", "gambling", "junk_food", "fast_food"})
FinancialMetric = Literal["savings_rate", "health_score", "total_saved_minor", "monthly_savings_minor"]
BadgeId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]


class SpecFieldError(ValueError):
    """A check across fields failed; `field` is the dotted wire path (relative to the model that
    raised it) of the field to fix, so error reports can name it, e.g. `config.behaviorTracking`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class SpecModel(WireModel):
    """A part of a badge definition: unknown fields are errors; immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --- the seed's configuration types --------------------------------------------------------


AccountType = Literal["checking", "savings", "credit"]
ALL_PROVIDERS: tuple[ProviderName, ...] = ("plaid", "truelayer", "yodlee")
ALL_ACCOUNT_TYPES: tuple[AccountType, ...] = ("checking", "savings", "credit")
# The seed's account types as `figures.account_kind` names them.
ACCOUNT_KIND = {"checking": "current", "savings": "savings", "credit": "credit"}


@dataclass(frozen=True)
class DataScope:
    """Which transactions a badge's figures are made of (by default: every one)."""

    providers: frozenset[str] = frozenset(ALL_PROVIDERS)
    account_kinds: frozenset[str] = frozenset(ACCOUNT_KIND.values())
    categories: frozenset[str] | None = None  # None: every category

    def admits(self, provider: str, account_kind: str, category: str) -> bool:
        return (
            provider in self.providers
            and account_kind in self.account_kinds
            and (self.categories is None or category in self.categories)
        )


class OpenBankingConfig(SpecModel):
    """What a bank-data badge reads: transactions of `accountTypes` accounts, in
    `analysisCategories` (the programme's `SpendingCategory` values; absent: every category),
    from connections with `providers`; at least `minimumHistoryMonths` complete months before it
    decides; synced at least every `syncIntervalHours`; kept `dataRetentionDays`."""

    providers: list[ProviderName] = Field(default=list(ALL_PROVIDERS), min_length=1)
    account_types: list[AccountType] = Field(default=list(ALL_ACCOUNT_TYPES), min_length=1)
    analysis_categories: list[str] | None = Field(default=None, min_length=1)
    data_retention_days: int = Field(default=730, ge=30, le=3650)
    sync_interval_hours: int = Field(default=6, ge=1, le=168)
    minimum_history_months: int = Field(default=3, ge=1, le=24)

    @field_validator("analysis_categories")
    @classmethod
    def _known_categories(cls, categories: list[str] | None) -> list[str] | None:
        if categories is not None:
            unknown = sorted(set(categories) - {category.value for category in SpendingCategory})
            if unknown:
                raise ValueError(f"not categories of the programme's taxonomy: {', '.join(unknown)}")
        return categories

    @property
    def scope(self) -> DataScope | None:
        """The part of a member's bank data this badge reads; None: all of it."""
        scope = DataScope(
            providers=frozenset(self.providers),
            account_kinds=frozenset(ACCOUNT_KIND[kind] for kind in self.account_types),
            categories=frozenset(self.analysis_categories) if self.analysis_categories is not None else None,
        )
        return None if scope == DataScope() else scope


class WebSocketConfig(SpecModel):
    event_types: list[EventType] = Field(min_length=1)
    webhook_url: AnyHttpUrl | None = None
    authentication_method: Literal["token", "signature"] = "signature"

    @field_validator("event_types")
    @classmethod
    def _distinct_types(cls, event_types: list[EventType]) -> list[EventType]:
        if len(set(event_types)) != len(event_types):
            raise ValueError("eventTypes must not repeat a type")
        return event_types


class BehaviorTrackingConfig(SpecModel):
    tracking_period: Period
    # Fraction by which the current period must beat the previous one: 0.1 means 10 % better.
    improvement_threshold: float = Field(gt=0, le=1)
    categories: list[BehaviourCategory] = Field(min_length=1)


class AnonymizationConfig(SpecModel):
    epsilon: float = Field(default=1.0, gt=0, le=10)
    min_group_size: int = Field(default=20, ge=10)


class ComparativeConfig(SpecModel):
    comparison_groups: list[ComparisonGroup] = Field(min_length=1)
    percentile_targets: list[int] = Field(min_length=1)
    anonymization: AnonymizationConfig = Field(default_factory=AnonymizationConfig)

    @field_validator("percentile_targets")
    @classmethod
    def _targets_are_percentiles(cls, targets: list[int]) -> list[int]:
        if any(not 50 <= target <= 99 for target in targets):
            raise ValueError("percentileTargets must be between 50 and 99 (95 means the top 5 %)")
        if sorted(set(targets)) != targets:
            raise ValueError("percentileTargets must be distinct and ascending")
        return targets


class AdvancedBadgeConfig(SpecModel):
    open_banking: OpenBankingConfig | None = None
    web_socket: WebSocketConfig | None = None
    behavior_tracking: BehaviorTrackingConfig | None = None
    comparative_analytics: ComparativeConfig | None = None


# --- rule kinds ------------------------------------------------------------------------------


class CountRule(SpecModel):
    """`target` matching events, ever."""

    kind: Literal["count"] = "count"
    event_type: EventType
    target: int = Field(gt=0, le=100_000)
    # Only events whose eventData holds all of these key/value pairs count. Within eventData's
    # own bounds: the definition crosses Temporal to every member's workflow, as events do.
    event_data_match: BoundedEventData = Field(default_factory=dict)


class StreakRule(SpecModel):
    """An event on `length` consecutive days (or ISO weeks), in the member's time zone."""

    kind: Literal["streak"] = "streak"
    event_type: EventType
    unit: Literal["day", "week"] = "day"
    length: int = Field(ge=2, le=3660)
    event_data_match: BoundedEventData = Field(default_factory=dict)


class DistinctRule(SpecModel):
    """`target` different values of `eventData[field]` (e.g. 5 different calculators)."""

    kind: Literal["distinct"] = "distinct"
    event_type: EventType
    field: str = Field(min_length=1, max_length=64)
    target: int = Field(gt=0, le=1_000)


class WindowRule(SpecModel):
    """`target` matching events within any `within_days` days (a sliding window)."""

    kind: Literal["window"] = "window"
    event_type: EventType
    target: int = Field(gt=1, le=10_000)
    within_days: int = Field(gt=0, le=366)
    event_data_match: BoundedEventData = Field(default_factory=dict)


class Tier(SpecModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]{0,31}$")
    target: int = Field(gt=0, le=100_000)


class TiersRule(SpecModel):
    """One badge, several levels (bronze, silver, gold) by count; each tier is its own award."""

    kind: Literal["tiers"] = "tiers"
    event_type: EventType
    tiers: list[Tier] = Field(min_length=1, max_length=10)
    event_data_match: BoundedEventData = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ascending(self) -> TiersRule:
        # A model check, not a field check: the API reports it at `rule.tiers` (the union tag
        # happens to be the field's name) rather than `rule.tiers.tiers`.
        targets = [tier.target for tier in self.tiers]
        if any(later <= earlier for earlier, later in itertools.pairwise(targets)):
            raise SpecFieldError("tiers", "tier targets must strictly increase")
        if len({tier.name for tier in self.tiers}) != len(self.tiers):
            raise SpecFieldError("tiers", "tier names must be distinct")
        return self


class MilestoneRule(SpecModel):
    """A cumulative financial goal, e.g. 1,000.00 saved in total (amounts in minor units)."""

    kind: Literal["milestone"] = "milestone"
    metric: Literal["total_saved_minor"] = "total_saved_minor"
    target_minor: int = Field(gt=0)
    currency: str = Field(default="GBP", pattern=r"^[A-Z]{3}$")


class AvoidanceRule(SpecModel):
    """No transaction in a harmful category for `window_days` days of covered bank data."""

    kind: Literal["avoidance"] = "avoidance"
    category: Literal["gambling", "junk_food", "fast_food"]
    window_days: int = Field(ge=7, le=730)


class ImprovementRule(SpecModel):
    """This period at least `behaviorTracking.improvementThreshold` better than the previous one."""

    kind: Literal["improvement"] = "improvement"
    category: BehaviourCategory


class SustainedRule(SpecModel):
    """A monthly figure at or above `minimum` for `months` complete months running, e.g. saving at
    least a tenth of income three months in a row."""

    kind: Literal["sustained"] = "sustained"
    metric: Literal["savings_rate"] = "savings_rate"
    minimum: float = Field(gt=0, le=1)
    months: int = Field(ge=1, le=24)


class BufferRule(SpecModel):
    """An emergency fund: savings balances worth at least `months` of the member's usual monthly
    spending (the mean of the last three complete months)."""

    kind: Literal["buffer"] = "buffer"
    months: float = Field(gt=0, le=24)


class GoalRule(SpecModel):
    """A goal the member set themselves (`POST /v1/me/goals`) reached; each goal is its own award."""

    kind: Literal["goal"] = "goal"


class ComparativeRule(SpecModel):
    """At or above a released peer percentile (`comparativeAnalytics.percentileTargets`) of a metric;
    each target reached is its own award instance (`p95`, `p99`)."""

    kind: Literal["comparative"] = "comparative"
    metric: FinancialMetric
    higher_is_better: bool = True


RealTimeRule = CountRule | StreakRule | DistinctRule | WindowRule | TiersRule
FinancialRule = (
    MilestoneRule | AvoidanceRule | ImprovementRule | SustainedRule | BufferRule | GoalRule | ComparativeRule
)
# Decided on the member's own bank data (by their behaviour workflow); comparative needs peers too.
BANK_DATA_RULES = (MilestoneRule, AvoidanceRule, ImprovementRule, SustainedRule, BufferRule, GoalRule)
Rule = Annotated[RealTimeRule | FinancialRule, Field(discriminator="kind")]
REAL_TIME_KINDS: frozenset[str] = frozenset({"count", "streak", "distinct", "window", "tiers"})


# --- rewards ---------------------------------------------------------------------------------


class PointsReward(SpecModel):
    kind: Literal["points"] = "points"
    points: int = Field(gt=0, le=1_000_000)


class MoneyReward(SpecModel):
    kind: Literal["money"] = "money"
    amount_minor: int = Field(gt=0, le=100_000_00)
    currency: str = Field(default="GBP", pattern=r"^[A-Z]{3}$")


Reward = Annotated[PointsReward | MoneyReward, Field(discriminator="kind")]


# --- a badge ---------------------------------------------------------------------------------


class BadgeSpec(SpecModel):
    """What an operator writes for one badge (the body of `PUT /v1/admin/badges/{badge_id}`)."""

    name: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=1_000)
    rule: Rule
    config: AdvancedBadgeConfig = Field(default_factory=AdvancedBadgeConfig)
    reward: Reward | None = None
    active: bool = True

    @model_validator(mode="after")
    def _rule_fits_config(self) -> BadgeSpec:
        rule, config = self.rule, self.config
        if isinstance(rule, BANK_DATA_RULES) and config.open_banking is None:
            raise SpecFieldError(
                "config.openBanking", f"a {rule.kind} badge needs config.openBanking: it is evaluated on bank data"
            )
        if isinstance(rule, ImprovementRule):
            tracking = config.behavior_tracking
            if tracking is None:
                raise SpecFieldError("config.behaviorTracking", "an improvement badge needs config.behaviorTracking")
            if rule.category not in tracking.categories:
                raise SpecFieldError(
                    "config.behaviorTracking.categories",
                    f"config.behaviorTracking.categories must list the rule's category {rule.category!r}",
                )
        if isinstance(rule, ComparativeRule) and config.comparative_analytics is None:
            raise SpecFieldError("config.comparativeAnalytics", "a comparative badge needs config.comparativeAnalytics")
        web_socket = config.web_socket
        if web_socket is not None and isinstance(rule, RealTimeRule) and rule.event_type not in web_socket.event_types:
            message = f"rule.eventType {rule.event_type!r} is not in config.webSocket.eventTypes"
            raise SpecFieldError("config.webSocket.eventTypes", message)
        return self

    @property
    def real_time(self) -> bool:
        return self.rule.kind in REAL_TIME_KINDS


class BadgeDefinition(BadgeSpec):
    """One version of a badge as stored: versions only ever increase, awards keep theirs."""

    badge_id: BadgeId
    version: int = Field(default=1, ge=1)

    @classmethod
    def from_spec(cls, badge_id: str, version: int, spec: BadgeSpec) -> BadgeDefinition:
        return cls(badge_id=badge_id, version=version, **spec.model_dump())


class Catalogue(SpecModel):
    """The shipped catalogue file (`badges/catalogue.yaml`): badge id → spec."""

    badges: dict[BadgeId, BadgeSpec] = Field(min_length=1)


def bank_sync_interval(catalogue: Sequence[BadgeDefinition], longest: timedelta) -> timedelta:
    """How often a bank connection syncs: the shortest `syncIntervalHours` of the active badges
    that read bank data, never longer than `longest` (the deployment's interval)."""
    hours = [
        badge.config.open_banking.sync_interval_hours
        for badge in catalogue
        if badge.active and badge.config.open_banking is not None
    ]
    return min([longest, *(timedelta(hours=h) for h in hours)])
