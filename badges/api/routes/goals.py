"""`POST/GET/DELETE /v1/me/goals`: goals a member sets themselves, with the progress their behaviour
evaluation found (see `badges/domain/goals.py` for what counts and when a goal is reached).

Goals need active `behaviour_tracking` consent (403 `consent-required`) and end with it; they are
kept sealed with the member's key. A new goal asks the member's behaviour workflow to evaluate at
once (`data_changed`, reason `goal`); until that evaluation has run, a goal's `progress` is null.
Each reached goal earns *Goal getter* once (the award's instance is the goal's id).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Response
from pydantic import Field, field_validator

from badges.api.deps import MemberId, Services, ServicesDep, SettingsDep, audit_member_access
from badges.api.intake import TEMPORAL_UNREACHABLE, temporal_unreachable
from badges.api.problems import Problem
from badges.api.throttle import parse_rate
from badges.db.consents import has_consent
from badges.db.goals import ConsentRequired, GoalRecord, TooManyGoals, add_goal, delete_goal, member_goals
from badges.db.insights import member_insights
from badges.domain.categories import SpendingCategory
from badges.domain.goals import LIMITABLE, MAX_GOALS, MAX_NAME_LENGTH, GoalKind
from badges.domain.wire import WireModel
from badges.messages.behaviour import DataChanged
from badges.temporal import behaviour_data_changed

router = APIRouter(tags=["goals"])
log = logging.getLogger("badges.goals")
MAX_AMOUNT_MINOR = 10**12  # ten billion in major units: past any plausible goal
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
Amount = Annotated[int, Field(gt=0, le=MAX_AMOUNT_MINOR)]


class SaveGoalRequest(WireModel):
    """Save `targetMinor` (minor units) from today on, by `deadline` if given."""

    kind: Literal["save"]
    name: Name
    target_minor: Amount
    deadline: date | None = Field(None, description="in your time zone; today or later")

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        return _name(value)


class LimitGoalRequest(WireModel):
    """Keep spending in `category` at most `limitMinor` (minor units) a calendar month."""

    kind: Literal["limit"]
    name: Name
    category: SpendingCategory = Field(description=f"a spending category: {', '.join(LIMITABLE)}")
    limit_minor: Amount

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        return _name(value)

    @field_validator("category", mode="before")
    @classmethod
    def _spending(cls, value: object) -> object:
        if not isinstance(value, str) or value not in LIMITABLE:
            known = "not spending" if value in tuple(SpendingCategory) else "not a category"
            raise ValueError(f"{value!r} is {known}; a limit goal takes one of {', '.join(LIMITABLE)}")
        return value


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("a goal needs a name")
    return value


GoalRequest = Annotated[SaveGoalRequest | LimitGoalRequest, Field(discriminator="kind")]


class SaveProgressView(WireModel):
    as_of: date = Field(description="the day (yours) the evaluation measured")
    saved_minor: int = Field(description="saved since the day you set the goal")
    target_minor: int
    percent: int
    pace_per_month_minor: int = Field(description="your recent saving pace (last three complete months)")
    expected_completion: date | None = Field(description="at that pace; null while it is nothing")
    on_track: bool | None = Field(description="for the deadline, when there is one")
    needed_per_month_minor: int | None = Field(description="to make the deadline from now")
    deadline_passed: bool
    at_risk: bool = Field(description="the deadline will be (or was) missed at your recent pace")
    reason: str


class LimitProgressView(WireModel):
    as_of: date
    month: date = Field(description="this month (its first day)")
    spent_minor: int = Field(description="spent in the category so far this month")
    limit_minor: int
    remaining_minor: int = Field(description="negative when over")
    percent: int
    predicted_minor: int | None = Field(description="the category's predicted spending by the month's end")
    last_complete_month: date | None
    last_complete_month_spent_minor: int | None
    last_complete_month_kept: bool | None
    months_kept: int = Field(description="whole months since you set the goal that kept within it")
    at_risk: bool = Field(description="over the limit this month, or predicted to be")
    reason: str


class GoalView(WireModel):
    id: uuid.UUID
    kind: GoalKind
    name: str
    target_minor: int | None = None
    deadline: date | None = None
    category: SpendingCategory | None = None
    limit_minor: int | None = None
    created_at: datetime
    reached_at: datetime | None = Field(description="when an evaluation first found it reached")
    progress: SaveProgressView | LimitProgressView | None = Field(
        description="from your newest evaluation; null until one has run since the goal was set"
    )


class Goals(WireModel):
    goals: list[GoalView]
    evaluated_at: datetime | None = Field(description="when your newest evaluation ran")
    most: int = Field(MAX_GOALS, description="goals one member may hold at once")


def goal_view(record: GoalRecord, progress: dict[str, Any] | None) -> GoalView:
    measured: SaveProgressView | LimitProgressView | None = None
    if progress is not None and progress.get("kind") == record.kind:
        view = SaveProgressView if record.kind == "save" else LimitProgressView
        measured = view.model_validate(progress)
    return GoalView(
        id=record.goal_id,
        kind=record.kind,
        name=record.name,
        target_minor=record.target_minor,
        deadline=record.deadline,
        category=record.category,
        limit_minor=record.limit_minor,
        created_at=record.created_at,
        reached_at=record.reached_at,
        progress=measured,
    )


def goal_views(records: list[GoalRecord], document: dict[str, Any] | None) -> list[GoalView]:
    """The member's goals with the progress an evaluation found for each (goals deleted since
    are not shown)."""
    found = {item.get("goalId"): item for item in (document or {}).get("goals", [])}
    return [goal_view(record, found.get(str(record.goal_id))) for record in records]


async def require_behaviour_tracking(services: Services, member_id: uuid.UUID) -> None:
    if not await has_consent(services.pool, member_id, "behaviour_tracking", datetime.now(UTC)):
        raise consent_required()


def consent_required() -> Problem:
    return Problem(
        403,
        "consent-required",
        "Goals need active `behaviour_tracking` consent: grant it with PUT /v1/me/consent.",
    )


def invalid(field: str, message: str) -> Problem:
    return Problem(
        422, "validation-failed", f"The request is not valid: {field}", errors=[{"field": field, "message": message}]
    )


async def _goals(services: Services, member_id: uuid.UUID, resource: str) -> Goals:
    records = await member_goals(services.pool, services.keys, member_id)
    found = await member_insights(services.pool, services.keys, member_id)
    await audit_member_access(services, member_id, action="read.goals", resource=resource)
    evaluated_at, document = found if found is not None else (None, None)
    return Goals(goals=goal_views(records, document), evaluated_at=evaluated_at)


@router.get("/v1/me/goals", response_model=Goals)
async def list_goals(member_id: MemberId, services: ServicesDep) -> Goals:
    """Your goals, oldest first, each with its progress."""
    await require_behaviour_tracking(services, member_id)
    return await _goals(services, member_id, "/v1/me/goals")


@router.get(
    "/v1/me/goals/{goal_id}", response_model=GoalView, responses={404: {"description": "You have no such goal"}}
)
async def get_goal(goal_id: uuid.UUID, member_id: MemberId, services: ServicesDep) -> GoalView:
    await require_behaviour_tracking(services, member_id)
    mine = await _goals(services, member_id, f"/v1/me/goals/{goal_id}")
    for goal in mine.goals:
        if goal.id == goal_id:
            return goal
    raise Problem(404, "goal-not-found", "You have no goal with that id.")


@router.post(
    "/v1/me/goals",
    status_code=201,
    response_model=GoalView,
    responses={409: {"description": f"You hold {MAX_GOALS} goals already"}},
)
async def create_goal(
    body: Annotated[GoalRequest, Body()],
    member_id: MemberId,
    services: ServicesDep,
    settings: SettingsDep,
    response: Response,
) -> GoalView:
    """Set a goal: save an amount (by a date), or keep a spending category under a monthly limit.
    Your behaviour evaluation runs at once and measures it; `GET /v1/me/goals` shows its progress.
    At most 20 goals at once (409 `too-many-goals`); new goals are limited per member
    (`BADGES_GOAL_RATE`, 429 past it)."""
    await require_behaviour_tracking(services, member_id)
    now = datetime.now(UTC)
    if isinstance(body, SaveGoalRequest) and body.deadline is not None:
        today = now.astimezone(ZoneInfo(await services.members.timezone(member_id))).date()
        if body.deadline < today:
            raise invalid("body.save.deadline", f"the deadline has passed (today is {today.isoformat()} for you)")
    await services.throttle.enforce(
        "member-goals", parse_rate(settings.goal_rate), str(member_id), "new goals per member"
    )
    record = GoalRecord(
        goal_id=uuid.uuid4(),
        kind=body.kind,
        name=body.name,
        created_at=now,
        reached_at=None,
        target_minor=body.target_minor if isinstance(body, SaveGoalRequest) else None,
        deadline=body.deadline if isinstance(body, SaveGoalRequest) else None,
        category=body.category if isinstance(body, LimitGoalRequest) else None,
        limit_minor=body.limit_minor if isinstance(body, LimitGoalRequest) else None,
    )
    try:
        await add_goal(services.pool, services.keys, member_id, record, most=MAX_GOALS, now=now)
    except ConsentRequired as error:
        raise consent_required() from error
    except TooManyGoals as error:
        raise Problem(
            409,
            "too-many-goals",
            f"You have {error.held} goals, the most one member may hold: delete one to set another.",
            most=error.most,
        ) from error
    await audit_member_access(
        services, member_id, action="write.goal", resource=f"/v1/me/goals/{record.goal_id}", details={"kind": body.kind}
    )
    try:
        await behaviour_data_changed(services.temporal, settings, member_id, DataChanged(reason="goal"))
    except TEMPORAL_UNREACHABLE as error:
        if not temporal_unreachable(error):
            raise
        # The goal is kept: the next sync or window close measures it.
        log.warning("goal %s kept; its evaluation could not be asked for: %s", record.goal_id, error)
    response.headers["Location"] = f"/v1/me/goals/{record.goal_id}"
    return goal_view(record, None)


@router.delete(
    "/v1/me/goals/{goal_id}",
    status_code=204,
    response_class=Response,
    responses={404: {"description": "You have no such goal"}},
)
async def remove_goal(goal_id: uuid.UUID, member_id: MemberId, services: ServicesDep) -> Response:
    """Delete a goal (a badge it earned stays earned)."""
    await require_behaviour_tracking(services, member_id)
    if not await delete_goal(services.pool, member_id, goal_id):
        raise Problem(404, "goal-not-found", "You have no goal with that id.")
    await audit_member_access(services, member_id, action="delete.goal", resource=f"/v1/me/goals/{goal_id}")
    return Response(status_code=204)
