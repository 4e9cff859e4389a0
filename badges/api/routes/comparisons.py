"""Reads of released peer statistics: a member's own comparisons (`GET /v1/me/comparisons`), a
group's released values (`GET /v1/peer-stats`), a group's values over releases
(`GET /v1/peer-stats/trends`) and how it all works (`GET /v1/peer-stats/methodology`, no token).

Every answer comes from a precomputed release (`peer_stats`) and, for a member's comparisons,
their own row of `peer_inputs` and their own evaluation; never from another member's row. A
member's comparisons are framed as the programme's seed asks (comparison can make people
anxious): their own change since their previous month first, where they stand second, and a
standing is given with its uncertainty, never more precise than the release allows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from psycopg_pool import AsyncConnectionPool

from badges.api.deps import MemberId, MemberPrincipal, ServicesDep, SettingsDep, audit_member_access
from badges.api.problems import Problem
from badges.db.peer_reads import (
    ReleaseSummary,
    group_series,
    member_comparison_inputs,
    published_groups,
    release_dimensions,
    release_summary,
)
from badges.db.peers import BUDGET_PERIOD, ReleasedGroup
from badges.domain.wire import WireModel
from badges.insights import comparisons as peers
from badges.insights.peers import allocation_of, dimensions_of

router = APIRouter(tags=["peer comparisons"])
RESOURCE = "/v1/me/comparisons"
MAX_TREND_RELEASES = 100


class ReleaseView(WireModel):
    release_id: uuid.UUID
    released_at: datetime
    epsilon: float
    delta: float


class GroupView(WireModel):
    dimension: str
    level: str
    key: str
    noisy_size: int
    # Where the member's own finer group was not published: the group they would be in.
    rolled_up_from: str | None = None


class Improvement(WireModel):
    """Your own figure now against your previous complete month."""

    month: date | None
    previous_month: date
    previous: float
    change: float
    verdict: Literal["better", "worse", "unchanged"] | None = None


class Standing(WireModel):
    """Your estimated percentile rank in the group (the share at or below your value, 0-100) and
    its 95 % interval; `low`/`high` are null when the release gave no uncertainty."""

    percentile: float
    low: float | None
    high: float | None
    uncertainty_known: bool


class MetricComparison(WireModel):
    metric: str
    your_value: float | None
    improvement: Improvement | None = None
    standing: Standing | None = None
    # Against a mean: your value less the group's, and whether that is beyond its uncertainty.
    peer_mean: float | None = None
    peer_mean_error: float | None = None
    difference: float | None = None
    compared_to_mean: Literal["above", "below", "about the same"] | None = None
    released: dict[str, float] = {}
    errors: dict[str, float | None] = {}
    summary: str = ""


class GroupComparison(WireModel):
    dimension: str
    status: Literal["compared", "not-published"]
    group: GroupView | None = None
    reason: str | None = None
    metrics: list[MetricComparison] = []


class Comparisons(WireModel):
    status: Literal["ready", "waiting", "no-release"]
    reason: str | None = None
    what_to_do: str | None = None
    release: ReleaseView | None = None
    month: date | None = None  # the month your figures are from
    computed_at: datetime | None = None
    groups: list[GroupComparison] = []


def _release_view(release: ReleaseSummary) -> ReleaseView:
    return ReleaseView(
        release_id=release.release_id, released_at=release.released_at, epsilon=release.epsilon, delta=release.delta
    )


@router.get("/v1/me/comparisons", response_model=Comparisons)
async def my_comparisons(member_id: MemberId, services: ServicesDep, settings: SettingsDep) -> Comparisons:
    """Where you stand among people like you, in each of your groups of the latest release: your
    own change since last month first, then your estimated percentile with its uncertainty (or,
    for spending, how you compare with the group's mean). Needs `peer_comparison` consent."""
    found = await member_comparison_inputs(services.pool, member_id)
    if not found.consented:
        raise Problem(
            403,
            "consent-required",
            "Comparisons need active `peer_comparison` consent: grant it with PUT /v1/me/consent (and"
            " `demographics`, for groups by postcode, salary bracket, dependants and age).",
        )
    if found.inputs is None:
        return Comparisons(
            status="waiting",
            reason="none of your figures are kept for comparison yet",
            what_to_do="Keep `behaviour_tracking` consent and a linked bank: your figures are kept after your next"
            " evaluation with a complete month, and compared from the release after that.",
        )
    audit = audit_member_access(
        services, member_id, action="read.comparisons", resource=RESOURCE, purpose="the member's own comparisons"
    )
    release = found.release
    inputs = found.inputs
    if release is None:
        await audit
        return Comparisons(
            status="no-release",
            reason="no peer statistics have been released yet",
            what_to_do=f"Releases run every {settings.peer_release_interval_hours:g} hours; look again after the next.",
            month=inputs.figures.month,
            computed_at=inputs.computed_at,
        )
    dimensions = await release_dimensions(services.pool, release)
    wanted = peers.member_groups(inputs.figures, inputs.other, dimensions)
    candidates = [(dimension, level, key) for dimension, groups in wanted.items() for level, key in groups]
    # The audit record (the member's first read in a minute waits for the audit chain's lock) is
    # written while the groups are read; the answer goes only once both are done.
    _, published = await asyncio.gather(audit, _released_groups(services.pool, release.release_id, candidates))
    document = None if found.sealed_insights is None else json.loads(await services.keys.unseal(found.sealed_insights))
    groups = []
    for dimension in dimensions:
        mine = wanted[dimension]
        chosen = next(((level, key) for level, key in mine if (dimension, level, key) in published), None)
        if chosen is None:
            groups.append(
                GroupComparison(
                    dimension=dimension,
                    status="not-published",
                    reason=_why_not(dimension, mine),
                )
            )
            continue
        group, stats = published[(dimension, *chosen)]
        finest = mine[0]
        view = GroupView(
            dimension=dimension,
            level=group.level,
            key=group.key,
            noisy_size=group.noisy_count,
            rolled_up_from=None if finest == chosen else f"{finest[0]}:{finest[1]}",
        )
        groups.append(
            GroupComparison(
                dimension=dimension,
                status="compared",
                group=view,
                metrics=_metrics(inputs.figures, stats, document),
            )
        )
    return Comparisons(
        status="ready",
        release=_release_view(release),
        month=inputs.figures.month,
        computed_at=inputs.computed_at,
        groups=groups,
    )


def _why_not(dimension: str, mine: list[tuple[str, str]]) -> str:
    if len(mine) <= 1:  # everyone at most: nothing of their own
        return (
            f"your demographics give no {dimension} (set it with PUT /v1/me/profile, with `demographics`"
            " consent), and everyone together was too few for this release to publish"
        )
    return (
        f"too few members in your {dimension} groups for this release to publish them, even rolled up to everyone;"
        " a later release may"
    )


GroupKey = tuple[str, str, str]  # (dimension, level, key)
# A release never changes once released: each process keeps the groups its members asked for
# (parsed, and those the release did not publish as None) for the latest releases it served.
_RELEASED: dict[uuid.UUID, dict[GroupKey, tuple[ReleasedGroup, peers.GroupStatistics] | None]] = {}
KEPT_RELEASES = 2


async def _released_groups(
    pool: AsyncConnectionPool, release_id: uuid.UUID, candidates: list[GroupKey]
) -> dict[GroupKey, tuple[ReleasedGroup, peers.GroupStatistics]]:
    """Of the candidate groups, those the release published, with their statistics parsed; read
    from the database only the first time a process is asked for each."""
    known = _RELEASED.get(release_id)
    if known is None:
        while len(_RELEASED) >= KEPT_RELEASES:
            del _RELEASED[next(iter(_RELEASED))]
        known = _RELEASED[release_id] = {}
    missing = [candidate for candidate in candidates if candidate not in known]
    if missing:
        found = {(g.dimension, g.level, g.key): g for g in await published_groups(pool, release_id, missing)}
        for candidate in missing:
            group = found.get(candidate)
            known[candidate] = None if group is None else (group, peers.parse_statistics(group.stats))
    return {candidate: entry for candidate in candidates if (entry := known[candidate]) is not None}


def _metrics(member: Any, stats: peers.GroupStatistics, document: dict[str, Any] | None) -> list[MetricComparison]:
    found = []
    for metric in stats.metrics():
        value = peers.own_value(member, metric)
        improvement = None
        if value is not None and document is not None and member.month is not None:
            previous = peers.previous_month_value(document, member.month, metric)
            if previous is not None:
                change = peers.change_of(metric, value, *previous)
                improvement = Improvement(
                    month=member.month,
                    previous_month=change.previous_month,
                    previous=change.previous,
                    change=change.change,
                    verdict=change.verdict,
                )
        quantiles = stats.quantiles.get(metric, [])
        mean = stats.means.get(metric)
        released = {f"p{q.alpha:g}": q.value for q in quantiles}
        errors: dict[str, float | None] = {f"p{q.alpha:g}": q.error for q in quantiles}
        difference = compared_to_mean = None
        if mean is not None:
            released["mean"], errors["mean"] = mean.value, mean.error
            if value is not None:
                against = peers.compare_to_mean(value, mean)
                difference, compared_to_mean = against.difference, against.standing
        standing = None
        if quantiles and value is not None:
            estimate = peers.estimate_percentile(value, quantiles, peers.BOUNDS.get(metric))
            if estimate is not None:
                standing = Standing(
                    percentile=round(estimate.percentile, 1),
                    low=None if estimate.low is None else round(estimate.low, 1),
                    high=None if estimate.high is None else round(estimate.high, 1),
                    uncertainty_known=estimate.uncertainty_known,
                )
        # Every field given at once: a model's mutable defaults are deep-copied for each instance
        # otherwise (about a seventh of this route's CPU, with some 75 metrics an answer).
        comparison = MetricComparison(
            metric=metric,
            your_value=value,
            improvement=improvement,
            standing=standing,
            peer_mean=None if mean is None else mean.value,
            peer_mean_error=None if mean is None else mean.error,
            difference=difference,
            compared_to_mean=compared_to_mean,
            released=released,
            errors=errors,
            summary=peers.summary(metric, value, improvement, standing, compared_to_mean),
        )
        found.append(comparison)
    return found


# --- a group's released values ----------------------------------------------------------------


class PeerStatistics(WireModel):
    release: ReleaseView
    group: GroupView
    metric: str
    # The released statistics of the metric: percentiles (`p50`, `p95`, ...) or `mean`; with each
    # one's 95 % half-width in `errors` (percentile points of rank, or the mean's units; null:
    # the release gave none).
    values: dict[str, float]
    errors: dict[str, float | None]


def _group_asked(dimension: str, value: str, level: str | None, dimensions: tuple[str, ...]) -> tuple[str, str]:
    """The (level, key) asked for; 400 for a dimension no release has."""
    known = set(peers.dimensions()) | set(dimensions)
    if dimension not in known:
        raise Problem(400, "unknown-dimension", f"dimension must be one of: {', '.join(sorted(known))}")
    if level is None:
        level = peers.level_of(dimension, value) or dimension
    return level, value


def _metric_asked(metric: str) -> str:
    if not peers.is_metric(metric):
        raise Problem(
            400,
            "unknown-metric",
            "metric must be `savingsRate`, `salary` or `spending.<category>` (e.g. spending.groceries)",
        )
    return metric


def _values(group: ReleasedGroup, metric: str) -> tuple[dict[str, float], dict[str, float | None]]:
    stats = peers.parse_statistics(group.stats)
    values = {f"p{q.alpha:g}": q.value for q in stats.quantiles.get(metric, [])}
    errors: dict[str, float | None] = {f"p{q.alpha:g}": q.error for q in stats.quantiles.get(metric, [])}
    if metric in stats.means:
        values["mean"], errors["mean"] = stats.means[metric].value, stats.means[metric].error
    return values, errors


Dimension = Annotated[str, Query(min_length=1, max_length=32, description="postcode, salary_bracket, dependants, ...")]
Value = Annotated[str, Query(min_length=1, max_length=32, description="the group's key: SW1A, 30-45k, ...")]
Metric = Annotated[str, Query(min_length=1, max_length=64, description="savingsRate, salary or spending.<category>")]
Level = Annotated[str | None, Query(max_length=32, description="the key's level (default: the finest that has it)")]


@router.get(
    "/v1/peer-stats",
    response_model=PeerStatistics,
    responses={
        404: {
            "description": "No such release, or the group was not published in it"
            " (`rolledUpTo` says where its members are compared)"
        }
    },
)
async def peer_statistics(
    _: MemberPrincipal,
    services: ServicesDep,
    dimension: Dimension,
    value: Value,
    metric: Metric,
    level: Level = None,
    release: Annotated[uuid.UUID | None, Query(description="a release id (default: the latest)")] = None,
) -> PeerStatistics:
    """A release's values of one metric for one group, with the release's privacy loss, the
    group's noisy size and each value's uncertainty."""
    _metric_asked(metric)
    summary = await release_summary(services.pool, release)
    if summary is None:
        raise Problem(
            404, "no-release", "No such release." if release else "No peer statistics have been released yet."
        )
    level, key = _group_asked(dimension, value, level, await release_dimensions(services.pool, summary))
    chain = [(level, key), *peers.parents(dimension, level, key)]
    found = {
        (g.level, g.key): g
        for g in await published_groups(services.pool, summary.release_id, [(dimension, lv, k) for lv, k in chain])
    }
    group = found.get((level, key))
    if group is None:
        rolled = next(((lv, k) for lv, k in chain[1:] if (lv, k) in found), None)
        if rolled is None:
            detail = f"{dimension} {level} {key!r} was not published in this release, nor any group above it."
        else:
            detail = (
                f"{dimension} {level} {key!r} was not published in this release (too few members): its members are"
                f" compared within {rolled[0]} {rolled[1]!r}."
            )
        raise Problem(
            404,
            "group-not-published",
            detail,
            rolled_up=rolled is not None,
            rolled_up_to=None if rolled is None else {"level": rolled[0], "key": rolled[1]},
        )
    values, errors = _values(group, metric)
    return PeerStatistics(
        release=_release_view(summary),
        group=GroupView(dimension=dimension, level=group.level, key=group.key, noisy_size=group.noisy_count),
        metric=metric,
        values=values,
        errors=errors,
    )


class TrendPoint(WireModel):
    release: ReleaseView
    published: bool
    noisy_size: int | None = None
    values: dict[str, float] = {}
    errors: dict[str, float | None] = {}


class Trend(WireModel):
    dimension: str
    level: str
    key: str
    metric: str
    points: list[TrendPoint]


@router.get("/v1/peer-stats/trends", response_model=Trend)
async def peer_trends(
    _: MemberPrincipal,
    services: ServicesDep,
    dimension: Dimension,
    value: Value,
    metric: Metric,
    level: Level = None,
    releases: Annotated[int, Query(ge=1, le=MAX_TREND_RELEASES, description="how many of the latest releases")] = 12,
) -> Trend:
    """The group's released values of a metric over the last `releases` releases, oldest first
    (a release that did not publish the group is a point with `published: false`)."""
    _metric_asked(metric)
    latest = await release_summary(services.pool)
    level, key = _group_asked(
        dimension, value, level, () if latest is None else await release_dimensions(services.pool, latest)
    )
    points = []
    for each in await group_series(services.pool, dimension, level, key, releases):
        if each.group is None:
            points.append(TrendPoint(release=_release_view(each.release), published=False))
            continue
        values, errors = _values(each.group, metric)
        points.append(
            TrendPoint(
                release=_release_view(each.release),
                published=True,
                noisy_size=each.group.noisy_count,
                values=values,
                errors=errors,
            )
        )
    return Trend(dimension=dimension, level=level, key=key, metric=metric, points=points)


# --- how it works -------------------------------------------------------------------------------


class Methodology(WireModel):
    """How peer statistics are made, in plain words (`text`, Markdown) and as figures (`settings`)."""

    text: str
    settings: dict[str, Any]


@router.get("/v1/peer-stats/methodology", response_model=Methodology)
async def methodology(services: ServicesDep, settings: SettingsDep) -> Methodology:
    """How groups, roll-up, bounds, budgets and pacing, suppression and uncertainty work, from the
    code's own constants, this deployment's settings and the comparative badges in force. No
    token needed."""
    _, catalogue = await services.catalogue.current()
    figures = peers.methodology_figures(
        catalogue,
        epsilon=settings.peer_release_epsilon,
        yearly_epsilon=settings.peer_yearly_epsilon,
        budget_period_days=BUDGET_PERIOD.days,
        min_group_size=settings.peer_min_group_size,
        interval_hours=settings.peer_release_interval_hours,
        allocation=allocation_of(settings),
        released=dimensions_of(settings),
    )
    return Methodology(text=peers.methodology_text(figures), settings=figures)
