"""Members' goals (`member_goals`): what the member set (its name, amounts, category and deadline)
sealed with their key, one row a goal; its kind, when it was set and when an evaluation first
found it reached in the clear. Deleted with the member, and when `behaviour_tracking` ends
(`consents.SCOPE_DATA`).

Hand-written on the psycopg pool: adding a goal locks the member as a consent change does
(`consents.lock_member`), so the consent it needs cannot end, nor another goal slip past the cap,
between the check and the insert.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.db.consents import lock_member
from badges.db.keys import KeyStore
from badges.domain.categories import SpendingCategory
from badges.domain.goals import GoalKind

SCOPE = "behaviour_tracking"


class MemberGoal(Base):
    __tablename__ = "member_goals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("kind IN ('save', 'limit')", name="kind"),)


@dataclass(frozen=True, slots=True)
class GoalRecord:
    goal_id: uuid.UUID
    kind: GoalKind
    name: str
    created_at: datetime
    reached_at: datetime | None
    target_minor: int | None = None
    deadline: date | None = None
    category: SpendingCategory | None = None
    limit_minor: int | None = None


class ConsentRequired(Exception):
    """The member has no active `behaviour_tracking` consent."""


class TooManyGoals(Exception):
    def __init__(self, held: int, most: int) -> None:
        super().__init__(f"{held} goals held; at most {most}")
        self.held = held
        self.most = most


def _content(record: GoalRecord) -> dict[str, Any]:
    if record.kind == "save":
        return {
            "name": record.name,
            "targetMinor": record.target_minor,
            "deadline": record.deadline.isoformat() if record.deadline else None,
        }
    return {
        "name": record.name,
        "category": record.category.value if record.category else None,
        "limitMinor": record.limit_minor,
    }


def _record(
    goal_id: uuid.UUID, kind: str, content: dict[str, Any], created: datetime, reached: datetime | None
) -> GoalRecord:
    deadline = content.get("deadline")
    category = content.get("category")
    return GoalRecord(
        goal_id=goal_id,
        kind="save" if kind == "save" else "limit",
        name=str(content["name"]),
        created_at=created,
        reached_at=reached,
        target_minor=content.get("targetMinor"),
        deadline=date.fromisoformat(deadline) if deadline else None,
        category=SpendingCategory(category) if category else None,
        limit_minor=content.get("limitMinor"),
    )


async def add_goal(
    pool: AsyncConnectionPool, keys: KeyStore, user_id: uuid.UUID, goal: GoalRecord, *, most: int, now: datetime
) -> GoalRecord:
    """Keep a new goal (its id, kind and `created_at` from `goal`); raises `ConsentRequired`
    without active `behaviour_tracking` consent and `TooManyGoals` when the member holds `most`."""
    sealed = await keys.seal(str(user_id), json.dumps(_content(goal), sort_keys=True).encode())
    async with pool.connection() as conn, conn.transaction():
        await lock_member(conn, user_id)
        cursor = await conn.execute(
            "SELECT 1 FROM consents WHERE user_id = %s AND scope = %s AND revoked_at IS NULL AND expires_at > %s",
            (user_id, SCOPE, now),
        )
        if await cursor.fetchone() is None:
            raise ConsentRequired()
        cursor = await conn.execute("SELECT count(*) FROM member_goals WHERE user_id = %s", (user_id,))
        row = await cursor.fetchone()
        held = int(row[0]) if row else 0
        if held >= most:
            raise TooManyGoals(held, most)
        await conn.execute(
            "INSERT INTO member_goals (id, user_id, kind, sealed, created_at) VALUES (%s, %s, %s, %s, %s)",
            (goal.goal_id, user_id, goal.kind, sealed, goal.created_at),
        )
    return goal


async def member_goals(pool: AsyncConnectionPool, keys: KeyStore, user_id: uuid.UUID) -> list[GoalRecord]:
    """The member's goals, oldest first, opened."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT id, kind, sealed, created_at, reached_at FROM member_goals WHERE user_id = %s"
            " ORDER BY created_at, id",
            (user_id,),
        )
        rows = await cursor.fetchall()
    return [
        _record(goal_id, kind, json.loads(await keys.unseal(bytes(sealed))), created, reached)
        for goal_id, kind, sealed, created, reached in rows
    ]


async def delete_goal(pool: AsyncConnectionPool, user_id: uuid.UUID, goal_id: uuid.UUID) -> bool:
    """False when the member has no goal with that id."""
    async with pool.connection() as conn:
        cursor = await conn.execute("DELETE FROM member_goals WHERE id = %s AND user_id = %s", (goal_id, user_id))
        return cursor.rowcount == 1


async def mark_reached(
    pool: AsyncConnectionPool, user_id: uuid.UUID, goal_ids: Sequence[uuid.UUID], at: datetime
) -> int:
    """Record when goals were first found reached (a goal reached before keeps its time)."""
    if not goal_ids:
        return 0
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "UPDATE member_goals SET reached_at = %s WHERE user_id = %s AND id = ANY(%s) AND reached_at IS NULL",
            (at, user_id, list(goal_ids)),
        )
        return cursor.rowcount
