"""`GET /v1/admin/metrics`: programme figures for operators and compliance staff;
`GET /v1/admin/metrics/success`: the seed's success metrics, with targets, definitions and months."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from badges.api.deps import ServicesDep, StaffPrincipal
from badges.api.routes.rewards import budget_views
from badges.api.schemas import MetricReadingView, ProgrammeMetrics, SuccessMetrics, SuccessMetricView
from badges.db.dead_letters import dead_letter_count
from badges.db.metrics import programme_counts, success_metrics
from badges.db.reviews import pending_reviews
from badges.db.rewards import ledger_totals
from badges.domain.programme import MetricSeries, WindowReading

router = APIRouter(tags=["admin"])


@router.get("/v1/admin/metrics", response_model=ProgrammeMetrics)
async def metrics(principal: StaffPrincipal, services: ServicesDep) -> ProgrammeMetrics:
    counts = await programme_counts(services.engine)
    return ProgrammeMetrics(
        members=counts.members,
        events_accepted=counts.events_accepted,
        awards_by_badge=counts.awards_by_badge,
        last_outbox_id=counts.last_outbox_id,
        stream_subscribers=services.hub.subscriber_count,
        rewards_by_status=await ledger_totals(services.engine),
        reward_budgets=await budget_views(services),
        reviews_pending=await pending_reviews(services.engine),
        dead_letters=await dead_letter_count(services.engine),
    )


@router.get("/v1/admin/metrics/success", response_model=SuccessMetrics)
async def success(
    principal: StaffPrincipal,
    services: ServicesDep,
    months: Annotated[int, Query(ge=1, le=24, description="Calendar months to show, the current one last.")] = 6,
) -> SuccessMetrics:
    """The seed's success metrics computed from the data: each with its target, its exact
    definition, its value over the last 30 days and month by month (UTC)."""
    now = datetime.now(UTC)
    series = await success_metrics(services.engine, now, months)
    return SuccessMetrics(computed_at=now, metrics=[_metric_view(metric) for metric in series])


def _metric_view(series: MetricSeries) -> SuccessMetricView:
    definition = series.definition

    def reading(window_reading: WindowReading) -> MetricReadingView:
        window, value = window_reading.window, window_reading.reading
        return MetricReadingView(
            label=window.label,
            start=window.start,
            end=window.end,
            partial=window.partial,
            value=value.value,
            numerator=value.numerator,
            denominator=value.denominator,
            met=value.met(definition),
        )

    return SuccessMetricView(
        id=definition.id.value,
        name=definition.name,
        definition=definition.definition,
        unit=definition.unit,
        target=definition.target,
        target_text=definition.target_text,
        numerator=definition.numerator,
        denominator=definition.denominator,
        current=reading(series.current),
        monthly=[reading(month) for month in series.monthly],
    )
