"""Peer statistics: what a release reads (`peer_inputs`, one row a consenting member), the privacy
budget ledger (`privacy_ledger`, one row a release asked for: reserved, released or refused) and
the released values (`peer_stats`, one row a published group). A reservation whose release
measured nothing is cancelled (`cancel_reservation`) and no longer counts.

`peer_inputs` is written by each behaviour evaluation while the member has active
`peer_comparison` consent, and deleted when that consent ends (`consents.SCOPE_DATA`), when
`behaviour_tracking` ends (what it derives from), or with the member (cascade). Its group keys
come from the member's demographics, so they are cleared when `demographics` consent ends. It is
not sealed: a release reads every consenting member's values in one query, which unsealing each
member's row would defeat; it holds coarse figures (a rate, a typical income, spending by
category, district, bracket, range) under the member's random UUID only (docs/personal-data.md).

Hand-written on the psycopg pool: the write locks the member as a consent change does
(`consents.lock_member`), so a withdrawal either commits first (and the write sees it) or waits
and then deletes what the write kept; the budget's check and the reservation are one transaction
under a table lock, so two releases at once cannot both spend the last of it.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.db.consents import lock_member
from badges.domain.categories import NOT_SPENDING, SpendingCategory
from badges.domain.peers import PeerInput

SCOPE = "peer_comparison"
BUDGET_PERIOD = timedelta(days=365)
# A release's `now` is taken before it reads its inputs (seconds to a minute at a million members),
# and workers' clocks differ: one reserved meanwhile carries a later time, and must count all the
# same. Entries stamped later than this after `now` do not count (only tests make such entries).
RESERVATION_SKEW = timedelta(days=1)
# Floating-point slack when adding up ε: ten releases of 0.1 are a budget of 1.
TOLERANCE = 1e-9


class PeerInputRow(Base):
    __tablename__ = "peer_inputs"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    month: Mapped[date | None] = mapped_column(Date)
    savings_rate: Mapped[float | None] = mapped_column(Double)
    salary_minor: Mapped[int | None] = mapped_column(BigInteger)
    spending: Mapped[dict[str, int]] = mapped_column(JSONB, server_default="{}")
    postcode_district: Mapped[str | None] = mapped_column(String(4))
    age_range: Mapped[str | None] = mapped_column(String(8))
    dependants: Mapped[int | None] = mapped_column(SmallInteger)
    salary_bracket: Mapped[str | None] = mapped_column(String(8))


class PrivacyLedgerRow(Base):
    __tablename__ = "privacy_ledger"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    mechanism: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    epsilon: Mapped[float] = mapped_column(Double)
    delta: Mapped[float] = mapped_column(Double, server_default="0")
    population: Mapped[int | None] = mapped_column(Integer)
    groups_released: Mapped[int | None] = mapped_column(Integer)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("status IN ('reserved', 'released', 'refused', 'cancelled')", name="status"),)


class PeerStatRow(Base):
    __tablename__ = "peer_stats"

    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("privacy_ledger.id", ondelete="CASCADE"), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    level: Mapped[str] = mapped_column(String(16), primary_key=True)
    group_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    noisy_count: Mapped[int] = mapped_column(Integer)
    # The released statistics by name (`savingsRate.p95`, `salary.p50`); null: no candidate won.
    stats: Mapped[dict[str, Any]] = mapped_column(JSONB)
    released_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# --- a member's inputs -------------------------------------------------------------------------

UPSERT_INPUT = """
INSERT INTO peer_inputs (user_id, seq, computed_at, month, savings_rate, salary_minor, spending,
    postcode_district, age_range, dependants, salary_bracket)
VALUES (%(user)s, %(seq)s, %(at)s, %(month)s, %(rate)s, %(salary)s, %(spending)s, %(district)s, %(age)s,
    %(dependants)s, %(bracket)s)
ON CONFLICT (user_id) DO UPDATE SET seq = excluded.seq, computed_at = excluded.computed_at, month = excluded.month,
    savings_rate = excluded.savings_rate, salary_minor = excluded.salary_minor, spending = excluded.spending,
    postcode_district = excluded.postcode_district, age_range = excluded.age_range,
    dependants = excluded.dependants, salary_bracket = excluded.salary_bracket
WHERE peer_inputs.seq < excluded.seq
"""


async def save_peer_inputs(
    pool: AsyncConnectionPool, user_id: uuid.UUID, seq: int, computed_at: datetime, found: PeerInput
) -> bool:
    """Keep the member's inputs to the next release, only while their `peer_comparison` consent
    is active (and unless a later evaluation's are kept already). False when not kept."""
    async with pool.connection() as conn, conn.transaction():
        await lock_member(conn, user_id)
        cursor = await conn.execute(
            "SELECT 1 FROM consents WHERE user_id = %s AND scope = %s AND revoked_at IS NULL AND expires_at > now()",
            (user_id, SCOPE),
        )
        if await cursor.fetchone() is None:
            return False
        cursor = await conn.execute(
            UPSERT_INPUT,
            {
                "user": user_id,
                "seq": seq,
                "at": computed_at,
                "month": found.month,
                "rate": found.savings_rate,
                "salary": found.salary_minor,
                "spending": Jsonb(found.spending),
                "district": found.postcode_district,
                "age": found.age_range,
                "dependants": found.dependants,
                "bracket": found.salary_bracket,
            },
        )
        return cursor.rowcount == 1


# Spending categories as `peer_inputs.spending` keys them: every category that is spending.
SPENDING_CATEGORIES = tuple(str(category) for category in SpendingCategory if category not in NOT_SPENDING)
INPUT_COLUMNS: dict[str, Any] = {
    "savings_rate": pl.Float64,
    "salary_minor": pl.Int64,
    "postcode_district": pl.String,
    "age_range": pl.String,
    "dependants": pl.Int64,
    "salary_bracket": pl.String,
    **{f"spending:{category}": pl.Int64 for category in SPENDING_CATEGORIES},
}


async def consenting_inputs(pool: AsyncConnectionPool) -> pl.DataFrame:
    """Every member's inputs whose `peer_comparison` consent is active now, one row a member with
    a column per spending category (0 where the month had none): one COPY, parsed by Polars,
    without a Python object per row. Rows are deleted when consent ends; the join also keeps out
    a grant that lapsed a moment ago.

    Read on a connection of its own in a thread: psycopg hands a COPY over one row at a time, and
    its async loop costs twice the synchronous one per row (a million members: about 5 s against
    2.5 s here)."""
    return await asyncio.to_thread(_read_inputs, pool.conninfo)


def _read_inputs(conninfo: str) -> pl.DataFrame:
    spending = ", ".join(f"coalesce((p.spending ->> '{category}')::bigint, 0)" for category in SPENDING_CATEGORIES)
    query = (
        "COPY (SELECT p.savings_rate, p.salary_minor, p.postcode_district, p.age_range, p.dependants,"
        f" p.salary_bracket, {spending} FROM peer_inputs p JOIN consents c ON c.user_id = p.user_id"
        f" AND c.scope = '{SCOPE}' AND c.revoked_at IS NULL AND c.expires_at > now())"
        " TO STDOUT WITH (FORMAT csv)"
    )
    buffer = io.BytesIO()
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor().copy(query) as copy:
        for chunk in copy:
            buffer.write(chunk)
    if buffer.tell() == 0:
        return pl.DataFrame(schema=INPUT_COLUMNS)
    buffer.seek(0)
    return pl.read_csv(buffer, has_header=False, new_columns=list(INPUT_COLUMNS), schema=INPUT_COLUMNS)


# --- the budget and the releases ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Budget:
    per_release: float
    per_year: float


@dataclass(frozen=True, slots=True)
class Reservation:
    """What the ledger says of a release: `reserved` (go on), `released` (done before: its
    values are stored), `refused` (with the reason) or, for a paced release, `not_due` (nothing
    recorded; `next_due` says when it will be); `spent`: ε released or reserved in the year
    before it, itself excluded."""

    status: str
    reason: str | None
    spent: float
    next_due: datetime | None = None


@dataclass(frozen=True, slots=True)
class Pace:
    """Whether a paced release of some ε is due now: the budget accrued so far (`accrued`) less
    what the ledger shows spent in the last 365 days (`spent`) covers it; else when it will."""

    due: bool
    accrued: float
    spent: float
    next_due: datetime | None


def pace(
    now: datetime, first: datetime | None, entries: Sequence[tuple[datetime, float]], epsilon: float, budget: Budget
) -> Pace:
    """The yearly budget accrues evenly: `per_year` times the share of a year since the first release
    (`first`), plus that first release's ε at once, at most `per_year`. A release of `epsilon` is
    due when the accrued budget less what `entries` (the ledger's spending, every kind of release:
    when, ε) spent in the 365 days before `now` covers it. With twelve a year of ε = 1 and a daily
    Schedule, one is due about every 30 days. Otherwise, `next_due`: the first moment it will be,
    as the accrual grows and past releases leave the 365-day window (None: never, `epsilon` is
    over the yearly budget)."""
    window = [(at, spent) for at, spent in entries if now - BUDGET_PERIOD < at <= now + RESERVATION_SKEW]
    spent = sum(spent for _, spent in window)
    if first is None:
        return Pace(epsilon <= budget.per_year + TOLERANCE, epsilon, spent, None)

    def accrued(at: datetime) -> float:
        return min(budget.per_year, epsilon + budget.per_year * ((at - first) / BUDGET_PERIOD))

    if accrued(now) - spent >= epsilon - TOLERANCE:
        return Pace(True, accrued(now), spent, None)
    if epsilon > budget.per_year + TOLERANCE:
        return Pace(False, accrued(now), spent, None)
    # Between two departures from the window the spending is constant and the accrual grows:
    # find the first segment in which the accrual reaches the spending plus `epsilon`.
    departures = sorted(at + BUDGET_PERIOD for at, _ in window)
    remaining = spent
    start = now
    for index in range(len(departures) + 1):
        end = departures[index] if index < len(departures) else None
        if remaining + epsilon <= budget.per_year + TOLERANCE:
            # accrued(t) ≥ remaining + epsilon from t = first + year · remaining / per_year on
            reached = first + BUDGET_PERIOD * (remaining / budget.per_year)
            at = max(start, reached)
            if end is None or at < end:
                return Pace(False, accrued(now), spent, at)
        if end is None:
            break
        remaining -= sum(e for when, e in window if when + BUDGET_PERIOD == end)
        start = end
    return Pace(False, accrued(now), spent, None)


async def reserve_release(
    pool: AsyncConnectionPool,
    release_id: uuid.UUID,
    epsilon: float,
    budget: Budget,
    *,
    requested_by: str,
    mechanism: str,
    parameters: dict[str, Any],
    now: datetime,
    paced: bool = False,
) -> Reservation:
    """Reserve `epsilon` for the release, or refuse it (recorded, with the reason) when it would
    take a release over the per-release budget or the members' yearly budget. Every member may
    be in every release, so the year's loss of each is at most the sum of the releases' ε (basic
    composition), counted over releases reserved or released in the year before `now`. Asking
    again for the same release returns what was decided the first time. A `paced` release (the
    Schedule's) that is not due (`pace`) is neither reserved nor recorded: `not_due`."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("LOCK TABLE privacy_ledger IN SHARE ROW EXCLUSIVE MODE")
        cursor = await conn.execute("SELECT status, reason FROM privacy_ledger WHERE id = %s", (release_id,))
        known = await cursor.fetchone()
        cursor = await conn.execute(
            "SELECT coalesce(sum(epsilon), 0) FROM privacy_ledger WHERE status IN ('reserved', 'released')"
            " AND requested_at > %s AND requested_at <= %s AND id <> %s",
            (now - BUDGET_PERIOD, now + RESERVATION_SKEW, release_id),
        )
        spent = float((await cursor.fetchone() or (0,))[0])
        # A cancelled reservation (an attempt that found no one) is decided afresh.
        if known is not None and known[0] != "cancelled":
            return Reservation(known[0], known[1], spent)
        if paced:
            found = await _pace(conn, epsilon, budget, now)
            if not found.due:
                return Reservation("not_due", _not_due(found, epsilon), spent, found.next_due)
        reason = refusal(epsilon, spent, budget)
        await conn.execute(
            "INSERT INTO privacy_ledger (id, requested_at, requested_by, status, reason, mechanism, parameters,"
            " epsilon, delta) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0)"
            " ON CONFLICT (id) DO UPDATE SET requested_at = excluded.requested_at,"
            " requested_by = excluded.requested_by, status = excluded.status, reason = excluded.reason,"
            " mechanism = excluded.mechanism,"
            " parameters = excluded.parameters, epsilon = excluded.epsilon, completed_at = NULL",
            (
                release_id,
                now,
                requested_by,
                "refused" if reason else "reserved",
                reason,
                mechanism,
                Jsonb(parameters),
                epsilon,
            ),
        )
        return Reservation("refused" if reason else "reserved", reason, spent)


async def cancel_reservation(pool: AsyncConnectionPool, release_id: uuid.UUID, reason: str) -> str | None:
    """Cancel the release's reservation when it measured nothing (a retried attempt found no one
    to measure), so its ε stops counting against the budget; `reason` is recorded. Returns the
    ledger's status for it afterwards: `cancelled`, or what it was if not reserved (`released`:
    an earlier attempt stored its values, which stand; `refused`), or None (nothing recorded).

    It opens no way to overspend. Only a `reserved` row is cancelled, and completing a release
    holds that row (`complete_release`: FOR UPDATE, and only while reserved), as does writing a
    contacts release's outcomes: an attempt that outlived its retry either completed first (then
    nothing is cancelled: its values are published and their ε counts) or finds the row cancelled
    and publishes nothing. Every release that decided while the reservation stood counted it
    (RESERVATION_SKEW keeps it counted even against one that began earlier), which only ever
    made them spend less; the row's UPDATE waits for a reservation in progress (its table lock),
    so the ε freed is seen only by decisions taken after it is freed."""
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(
            "UPDATE privacy_ledger SET status = 'cancelled', reason = %s, completed_at = now()"
            " WHERE id = %s AND status = 'reserved' RETURNING status",
            (reason, release_id),
        )
        if await cursor.fetchone() is not None:
            return "cancelled"
        cursor = await conn.execute("SELECT status FROM privacy_ledger WHERE id = %s", (release_id,))
        row = await cursor.fetchone()
        return None if row is None else str(row[0])


async def release_pace(pool: AsyncConnectionPool, epsilon: float, budget: Budget, now: datetime) -> Pace:
    """Whether a paced release of `epsilon` is due at `now` (`pace`), from the ledger."""
    async with pool.connection() as conn:
        return await _pace(conn, epsilon, budget, now)


async def _pace(conn: AsyncConnection[Any], epsilon: float, budget: Budget, now: datetime) -> Pace:
    # Every release that spends counts, whatever kind it is: the ledger is the one budget.
    cursor = await conn.execute(
        "SELECT min(requested_at) FROM privacy_ledger WHERE status IN ('reserved', 'released') AND requested_at <= %s",
        (now,),
    )
    first = (await cursor.fetchone() or (None,))[0]
    cursor = await conn.execute(
        "SELECT requested_at, epsilon FROM privacy_ledger WHERE status IN ('reserved', 'released')"
        " AND requested_at > %s AND requested_at <= %s",
        (now - BUDGET_PERIOD, now + RESERVATION_SKEW),
    )
    entries = [(row[0], float(row[1])) for row in await cursor.fetchall()]
    return pace(now, first, entries, epsilon, budget)


def _not_due(found: Pace, epsilon: float) -> str:
    when = f"; the next is due at {found.next_due.isoformat(timespec='minutes')}" if found.next_due else ""
    return (
        f"not due: ε = {found.accrued:.3g} of the yearly budget has accrued and ε = {found.spent:.3g} was spent"
        f" in the last 365 days, a release asks for ε = {epsilon:g}{when}"
    )


def refusal(epsilon: float, spent: float, budget: Budget) -> str | None:
    """Why a release of `epsilon` may not run after `spent` this year (None: it may)."""
    if epsilon > budget.per_release + TOLERANCE:
        return f"a release may spend at most ε = {budget.per_release:g}; this one asks for ε = {epsilon:g}"
    if spent + epsilon > budget.per_year + TOLERANCE:
        return (
            f"the yearly privacy budget (ε = {budget.per_year:g} per member) would be exceeded: ε = {spent:g} spent"
            f" in the last 365 days, this release asks for ε = {epsilon:g}"
        )
    return None


@dataclass(frozen=True, slots=True)
class ReleasedGroup:
    dimension: str
    level: str
    key: str
    noisy_count: int
    stats: dict[str, Any]


async def complete_release(
    pool: AsyncConnectionPool,
    release_id: uuid.UUID,
    *,
    epsilon: float,
    delta: float,
    population: int,
    parameters: dict[str, Any],
    groups: Sequence[ReleasedGroup],
    now: datetime,
) -> None:
    """Store a reserved release's values and record its measured privacy loss, in one
    transaction; the loss may not exceed what was reserved."""
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(
            "SELECT status, epsilon FROM privacy_ledger WHERE id = %s FOR UPDATE", (release_id,)
        )
        row = await cursor.fetchone()
        if row is None or row[0] != "reserved":
            raise ValueError(f"release {release_id} is not reserved")
        if epsilon > row[1] + TOLERANCE:
            raise ValueError(f"release {release_id} measured ε = {epsilon} over its reservation of ε = {row[1]}")
        async with conn.cursor() as batch:
            await batch.executemany(
                "INSERT INTO peer_stats (release_id, dimension, level, group_key, noisy_count, stats, released_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(release_id, g.dimension, g.level, g.key, g.noisy_count, Jsonb(g.stats), now) for g in groups],
            )
        await conn.execute(
            "UPDATE privacy_ledger SET status = 'released', epsilon = %s, delta = %s, population = %s,"
            " groups_released = %s, parameters = %s, completed_at = %s WHERE id = %s",
            (epsilon, delta, population, len(groups), Jsonb(parameters), now, release_id),
        )


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    release_id: uuid.UUID
    requested_at: datetime
    requested_by: str
    status: str
    reason: str | None
    mechanism: str
    parameters: dict[str, Any]
    epsilon: float
    delta: float
    population: int | None
    groups_released: int | None


async def ledger_entry(pool: AsyncConnectionPool, release_id: uuid.UUID) -> LedgerEntry | None:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT id, requested_at, requested_by, status, reason, mechanism, parameters, epsilon, delta,"
            " population, groups_released FROM privacy_ledger WHERE id = %s",
            (release_id,),
        )
        row = await cursor.fetchone()
    return LedgerEntry(*row) if row else None


async def released_groups(pool: AsyncConnectionPool, release_id: uuid.UUID) -> list[ReleasedGroup]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT dimension, level, group_key, noisy_count, stats FROM peer_stats WHERE release_id = %s"
            " ORDER BY dimension, level, group_key",
            (release_id,),
        )
        return [ReleasedGroup(*row) for row in await cursor.fetchall()]
