"""The rewards ledger (one row per rewarded award, ever) and the budgets that cap it per period.

Granting is hand-written on the psycopg pool: `record_progress` grants a batch's rewards on the
real-time path, and releasing deferred rewards charges budgets with the same statements
(`_charge`). Reads and budget changes are SQLAlchemy Core."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base


class RewardLedgerEntry(Base):
    __tablename__ = "reward_ledger"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    badge_id: Mapped[str] = mapped_column(String(64))
    instance: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # points | money
    amount: Mapped[int] = mapped_column(BigInteger)  # points, or minor units of `currency`
    currency: Mapped[str] = mapped_column(String(3), server_default="")  # "" for points
    status: Mapped[str] = mapped_column(String(16))  # granted | deferred | withheld
    # The budget period the reward was charged to (granted) or waits for (deferred), e.g. 2026-11.
    period: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200), server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    granted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("user_id", "badge_id", "instance"),
        CheckConstraint("status IN ('granted', 'deferred', 'withheld')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )


class RewardBudget(Base):
    """A cap on rewards per calendar month, for one badge or (`scope` = '*') for the programme."""

    __tablename__ = "reward_budgets"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True, server_default="")
    monthly_limit: Mapped[int] = mapped_column(BigInteger)
    # What happens to a reward over the cap: `defer` grants it in a later month with room,
    # `withhold` records it as withheld. Either way the badge is awarded and the ledger says so.
    policy: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("policy IN ('defer', 'withhold')", name="policy"),
        CheckConstraint("monthly_limit >= 0", name="limit_non_negative"),
    )


class RewardBudgetUsage(Base):
    __tablename__ = "reward_budget_usage"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger, server_default="0")


GRANTED, DEFERRED, WITHHELD = "granted", "deferred", "withheld"


@dataclass(frozen=True)
class RewardClaim:
    """A reward an award carries, as the ledger needs it."""

    badge_id: str
    instance: str
    version: int
    kind: str  # points | money
    amount: int
    currency: str  # "" for points
    awarded_at: datetime


def budget_period(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


APPLICABLE_BUDGETS = """
SELECT scope, monthly_limit, policy FROM reward_budgets
 WHERE scope IN (%(badge_id)s, '*') AND kind = %(kind)s AND currency = %(currency)s
 ORDER BY scope
"""
# A period's usage starts at what the ledger already granted in it under the budget's scope, so a
# budget created mid-month counts the month's earlier grants.
SEED_USAGE = """
INSERT INTO reward_budget_usage (scope, kind, currency, period, used)
SELECT %(scope)s::text, %(kind)s::text, %(currency)s::text, %(period)s::text, coalesce(sum(amount), 0)
  FROM reward_ledger
 WHERE status = 'granted' AND period = %(period)s::text AND kind = %(kind)s::text
   AND currency = %(currency)s::text AND (%(scope)s::text = '*' OR badge_id = %(scope)s::text)
   -- a one-time filter: once the period's row exists (every charge after the first), no ledger scan
   AND NOT EXISTS (SELECT 1 FROM reward_budget_usage
                    WHERE scope = %(scope)s::text AND kind = %(kind)s::text
                      AND currency = %(currency)s::text AND period = %(period)s::text)
ON CONFLICT DO NOTHING
"""
READ_USAGE = """
SELECT used FROM reward_budget_usage WHERE scope = %s AND kind = %s AND currency = %s AND period = %s FOR UPDATE
"""
CHARGE_USAGE = """
UPDATE reward_budget_usage SET used = used + %s WHERE scope = %s AND kind = %s AND currency = %s AND period = %s
"""


async def _charge(connection: AsyncConnection, claim: RewardClaim, period: str) -> tuple[bool, str, str]:
    """Charge the claim to every budget that covers it, if all have room. Returns whether it was
    charged and, if not, the policy and reason of the first exhausted budget."""
    params = {"badge_id": claim.badge_id, "kind": claim.kind, "currency": claim.currency}
    budgets = await (await connection.execute(APPLICABLE_BUDGETS, params)).fetchall()
    exhausted: list[tuple[str, str]] = []
    for scope, monthly_limit, policy in budgets:  # sorted by scope: a fixed lock order
        key = (scope, claim.kind, claim.currency, period)
        await connection.execute(
            SEED_USAGE, {"scope": scope, "kind": claim.kind, "currency": claim.currency, "period": period}
        )
        row = await (await connection.execute(READ_USAGE, key)).fetchone()
        used = row[0] if row else 0
        if used + claim.amount > monthly_limit:
            label = "the programme" if scope == "*" else f"badge {scope}"
            if claim.amount > monthly_limit:
                reason = f"reward of {claim.amount} exceeds the monthly budget for {label} ({monthly_limit})"
            else:
                reason = f"monthly budget for {label} exhausted in {period} ({used} of {monthly_limit} used)"
            exhausted.append((policy, reason))
    if exhausted:
        # Withholding wins over deferring: a budget that says "never over the cap" is final.
        withhold = [reason for policy, reason in exhausted if policy == "withhold"]
        return False, ("withhold" if withhold else "defer"), (withhold or [exhausted[0][1]])[0]
    for scope, _, _ in budgets:
        await connection.execute(CHARGE_USAGE, (claim.amount, scope, claim.kind, claim.currency, period))
    return True, "", ""


async def grant_rewards(connection: AsyncConnection, user_id: uuid.UUID, claims: Sequence[RewardClaim]) -> None:
    """Record each claim in the ledger exactly once, in the caller's transaction (a member's batch,
    written whole or not at all): granted if every budget covering it has room this month, else
    deferred or withheld by the exhausted budget's policy, with the reason."""
    for claim in claims:
        period = budget_period(claim.awarded_at)
        inserted = await (
            await connection.execute(
                """
                INSERT INTO reward_ledger (user_id, badge_id, instance, version, kind, amount, currency,
                                           status, period)
                VALUES (%s, %s, %s, %s, %s, %s, %s, 'deferred', %s)
                ON CONFLICT (user_id, badge_id, instance) DO NOTHING
                RETURNING id
                """,
                (user_id, claim.badge_id, claim.instance, claim.version, claim.kind, claim.amount,
                 claim.currency, period),
            )
        ).fetchone()  # fmt: skip
        if inserted is None:
            continue  # recorded by an earlier attempt
        charged, policy, reason = await _charge(connection, claim, period)
        status = GRANTED if charged else (WITHHELD if policy == "withhold" else DEFERRED)
        await connection.execute(
            "UPDATE reward_ledger SET status = %s, reason = %s, granted_at = CASE WHEN %s THEN now() END WHERE id = %s",
            (status, reason, charged, inserted[0]),
        )


async def release_deferred(pool: AsyncConnectionPool, now: datetime, limit: int = 1_000) -> int:
    """Grant deferred rewards, oldest first, from this month's budgets while they have room.
    Returns how many were granted."""
    period = budget_period(now)
    granted = 0
    async with pool.connection() as connection:
        rows = await (
            await connection.execute(
                "SELECT id, badge_id, instance, version, kind, amount, currency FROM reward_ledger"
                " WHERE status = 'deferred' ORDER BY created_at, id LIMIT %s",
                (limit,),
            )
        ).fetchall()
    for ledger_id, badge_id, instance, version, kind, amount, currency in rows:
        claim = RewardClaim(badge_id, instance, version, kind, amount, currency, now)
        async with pool.connection() as connection, connection.transaction():
            still = await (
                await connection.execute(
                    "SELECT 1 FROM reward_ledger WHERE id = %s AND status = 'deferred' FOR UPDATE", (ledger_id,)
                )
            ).fetchone()
            if still is None:
                continue
            charged, _, reason = await _charge(connection, claim, period)
            if charged:
                await connection.execute(
                    "UPDATE reward_ledger SET status = 'granted', period = %s, reason = '', granted_at = now()"
                    " WHERE id = %s",
                    (period, ledger_id),
                )
                granted += 1
            else:
                await connection.execute("UPDATE reward_ledger SET reason = %s WHERE id = %s", (reason, ledger_id))
    return granted


@dataclass(frozen=True, slots=True)
class RewardRecord:
    """A ledger row."""

    id: int
    user_id: uuid.UUID
    badge_id: str
    instance: str
    version: int
    kind: str
    amount: int
    currency: str
    status: str
    period: str
    reason: str
    created_at: datetime
    granted_at: datetime | None


async def member_rewards(engine: AsyncEngine, user_id: uuid.UUID) -> list[RewardRecord]:
    query = (
        select(RewardLedgerEntry.__table__).where(RewardLedgerEntry.user_id == user_id).order_by(RewardLedgerEntry.id)
    )
    async with engine.connect() as connection:
        return [RewardRecord(**row._mapping) for row in await connection.execute(query)]


async def set_budget(
    engine: AsyncEngine, scope: str, kind: str, currency: str, monthly_limit: int, policy: str
) -> None:
    async with engine.begin() as connection:
        statement = pg_insert(RewardBudget).values(
            scope=scope, kind=kind, currency=currency, monthly_limit=monthly_limit, policy=policy
        )
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=[RewardBudget.scope, RewardBudget.kind, RewardBudget.currency],
                set_={"monthly_limit": monthly_limit, "policy": policy, "updated_at": func.now()},
            )
        )
        # This month's usage counts what was granted before the budget existed.
        params = {"scope": scope, "kind": kind, "currency": currency, "period": budget_period(datetime.now(UTC))}
        await connection.exec_driver_sql(SEED_USAGE, params)


@dataclass(frozen=True, slots=True)
class BudgetState:
    """A budget and what a period has used of it."""

    scope: str
    kind: str
    currency: str
    monthly_limit: int
    policy: str
    used: int


async def budget_state(engine: AsyncEngine, period: str) -> list[BudgetState]:
    """Every budget with what this period has used of it."""
    usage = (
        select(RewardBudgetUsage.used)
        .where(
            RewardBudgetUsage.scope == RewardBudget.scope,
            RewardBudgetUsage.kind == RewardBudget.kind,
            RewardBudgetUsage.currency == RewardBudget.currency,
            RewardBudgetUsage.period == period,
        )
        .scalar_subquery()
    )
    query = select(RewardBudget.__table__, func.coalesce(usage, 0).label("used")).order_by(
        RewardBudget.scope, RewardBudget.kind
    )
    async with engine.connect() as connection:
        return [
            BudgetState(row.scope, row.kind, row.currency, row.monthly_limit, row.policy, int(row.used))
            for row in await connection.execute(query)
        ]


@dataclass(frozen=True, slots=True)
class LedgerCount:
    """Rewards by status among the ledger rows counted, and the highest id among them (0: none)."""

    by_status: dict[str, int]
    through_id: int


async def count_ledger(engine: AsyncEngine, *, after_id: int = 0) -> LedgerCount:
    """Rewards by status among the rows with an id past `after_id`: with one, a range of the
    primary key (the rows added since an earlier count), however long the ledger."""
    query = (
        select(RewardLedgerEntry.status, func.count(), func.max(RewardLedgerEntry.id))
        .where(RewardLedgerEntry.id > after_id)
        .group_by(RewardLedgerEntry.status)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return LedgerCount({status: count for status, count, _ in rows}, max((last for *_, last in rows), default=0))


async def ledger_totals(engine: AsyncEngine) -> dict[str, int]:
    """How many rewards stand in each status (the whole ledger)."""
    return (await count_ledger(engine)).by_status
