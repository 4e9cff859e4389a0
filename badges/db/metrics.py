"""Programme figures for operators, counted across the member, receipt, award and outbox tables;
and the counts behind the seed's success metrics (`domain/programme.py`), every window at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, Integer, and_, cast, column, distinct, exists, func, select, union_all, values
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.db.audit import AuditRecord
from badges.db.banking import BankAccount, BankTransaction
from badges.db.catalogue import BadgeDefinitionVersion
from badges.db.consents import Consent
from badges.db.members import Member
from badges.db.outbox import OutboxEntry
from badges.db.progress import AwardRow
from badges.db.receipts import EventReceiptRow
from badges.domain import programme
from badges.domain.definitions import REAL_TIME_KINDS
from badges.domain.programme import (
    MetricSeries,
    MonthlyTotal,
    Window,
    WindowActivity,
    WindowCompletion,
    add_months,
    month_windows,
    savings_rates,
    trailing_window,
)


@dataclass(frozen=True, slots=True)
class ProgrammeCounts:
    members: int
    events_accepted: int
    awards_by_badge: dict[str, int]
    last_outbox_id: int


async def programme_counts(engine: AsyncEngine) -> ProgrammeCounts:
    async with engine.connect() as connection:
        members = await connection.scalar(select(func.count()).select_from(Member))
        events = await connection.scalar(select(func.count()).select_from(EventReceiptRow))
        awards = await connection.execute(select(AwardRow.badge_id, func.count()).group_by(AwardRow.badge_id))
        last_outbox_id = await connection.scalar(select(func.coalesce(func.max(OutboxEntry.id), 0)))
        awards_by_badge = {badge_id: count for badge_id, count in awards}
    return ProgrammeCounts(
        members=members or 0,
        events_accepted=events or 0,
        awards_by_badge=awards_by_badge,
        last_outbox_id=last_outbox_id or 0,
    )


# --- the seed's success metrics (`domain/programme.py` says what each one means) ------------


def _windows(windows: Sequence[Window]) -> Any:
    """The windows as a table (n, start, stop), n their index, for one statement to read them all."""
    rows = [(n, window.start, window.end) for n, window in enumerate(windows)]
    table = values(
        column("n", Integer),
        column("start", DateTime(timezone=True)),
        column("stop", DateTime(timezone=True)),
        name="w",
    ).data(rows)
    return select(table).cte("w")


def _span(windows: Sequence[Window]) -> tuple[datetime, datetime]:
    return min(window.start for window in windows), max(window.end for window in windows)


async def window_activity(engine: AsyncEngine, windows: Sequence[Window]) -> list[WindowActivity]:
    """Each window's active members, open-banking members among them, their engagement days, and
    the open-banking members who viewed their comparisons: one statement for every window."""
    since, until = _span(windows)
    w = _windows(windows)
    actions = union_all(
        select(EventReceiptRow.user_id.label("user_id"), EventReceiptRow.received_at.label("at")).where(
            EventReceiptRow.received_at >= since, EventReceiptRow.received_at < until
        ),
        select(AuditRecord.subject, AuditRecord.at).where(
            AuditRecord.actor_role == "user",
            AuditRecord.subject.is_not(None),
            AuditRecord.at >= since,
            AuditRecord.at < until,
        ),
    ).cte("actions")
    in_window = and_(actions.c.at >= w.c.start, actions.c.at < w.c.stop)
    days = (
        select(
            w.c.n,
            actions.c.user_id,
            func.count(distinct(cast(func.timezone("UTC", actions.c.at), Date))).label("days"),
        )
        .select_from(w.join(actions, in_window).join(Member, Member.id == actions.c.user_id))
        .group_by(w.c.n, actions.c.user_id)
        .cte("days")
    )
    banking = (
        select(w.c.n, Consent.user_id)
        .select_from(w)
        .join(
            Consent,
            and_(
                Consent.scope == "open_banking",
                Consent.granted_at < w.c.stop,
                func.least(Consent.revoked_at, Consent.expires_at) > w.c.start,
            ),
        )
        .cte("banking")
    )
    compared = (
        select(w.c.n, AuditRecord.subject.label("user_id"))
        .distinct()
        .select_from(w)
        .join(
            AuditRecord,
            and_(
                AuditRecord.action == "read.comparisons",
                AuditRecord.actor_role == "user",
                AuditRecord.at >= w.c.start,
                AuditRecord.at < w.c.stop,
            ),
        )
        .cte("compared")
    )
    with_banking = banking.c.user_id.is_not(None)
    statement = (
        select(
            w.c.n,
            func.count(days.c.user_id),
            func.count(banking.c.user_id),
            func.coalesce(func.sum(days.c.days).filter(with_banking), 0),
            func.coalesce(func.sum(days.c.days).filter(~with_banking), 0),
            func.count(compared.c.user_id).filter(with_banking),
        )
        .select_from(
            w.outerjoin(days, days.c.n == w.c.n)
            .outerjoin(banking, and_(banking.c.n == days.c.n, banking.c.user_id == days.c.user_id))
            .outerjoin(compared, and_(compared.c.n == days.c.n, compared.c.user_id == days.c.user_id))
        )
        .group_by(w.c.n)
        .order_by(w.c.n)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [WindowActivity(*(int(value) for value in row[1:])) for row in rows]


async def real_time_completion(engine: AsyncEngine, windows: Sequence[Window]) -> list[WindowCompletion]:
    """Each window's (member, real-time badge) pairs worked on (progress announced in the outbox, or
    an award) and those of them awarded in the window: one statement for every window."""
    since, until = _span(windows)
    w = _windows(windows)
    real_time = (
        select(BadgeDefinitionVersion.badge_id)
        .where(BadgeDefinitionVersion.spec["rule"]["kind"].astext.in_(sorted(REAL_TIME_KINDS)))
        .distinct()
    )
    worked = union_all(
        select(
            OutboxEntry.user_id.label("user_id"),
            OutboxEntry.payload["badgeId"].astext.label("badge_id"),
            OutboxEntry.created_at.label("at"),
        ).where(OutboxEntry.kind == "progress", OutboxEntry.created_at >= since, OutboxEntry.created_at < until),
        select(AwardRow.user_id, AwardRow.badge_id, AwardRow.awarded_at).where(
            AwardRow.awarded_at >= since, AwardRow.awarded_at < until
        ),
    ).cte("worked")
    pairs = (
        select(w.c.n, w.c.start, w.c.stop, worked.c.user_id, worked.c.badge_id)
        .distinct()
        .select_from(w.join(worked, and_(worked.c.at >= w.c.start, worked.c.at < w.c.stop)))
        .where(worked.c.badge_id.in_(real_time))
        .cte("pairs")
    )
    awarded = (
        exists()
        .where(
            AwardRow.user_id == pairs.c.user_id,
            AwardRow.badge_id == pairs.c.badge_id,
            AwardRow.awarded_at >= pairs.c.start,
            AwardRow.awarded_at < pairs.c.stop,
        )
        .correlate(pairs)
    )
    statement = (
        select(w.c.n, func.count(pairs.c.user_id), func.count(pairs.c.user_id).filter(awarded))
        .select_from(w.outerjoin(pairs, pairs.c.n == w.c.n))
        .group_by(w.c.n)
        .order_by(w.c.n)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [WindowCompletion(worked_on=int(row[1]), completed=int(row[2])) for row in rows]


async def monthly_totals(engine: AsyncEngine, first: date, end: date) -> list[MonthlyTotal]:
    """Settled, categorised transactions from `first` to before `end`, summed per member, month,
    category and account type, money in and out apart: what `programme.savings_rates` needs."""
    month = cast(func.date_trunc("month", BankTransaction.posted_date), Date).label("month")
    amount = BankTransaction.amount_minor
    statement = (
        select(
            BankTransaction.user_id,
            month,
            BankTransaction.category,
            BankAccount.type,
            BankAccount.subtype,
            func.coalesce(func.sum(amount).filter(amount > 0), 0),
            func.coalesce(func.sum(amount).filter(amount < 0), 0),
        )
        .join(
            BankAccount,
            and_(
                BankAccount.connection_id == BankTransaction.connection_id,
                BankAccount.account_id == BankTransaction.account_id,
            ),
        )
        .where(
            BankTransaction.pending.is_(False),
            BankTransaction.category.is_not(None),
            BankTransaction.posted_date >= first,
            BankTransaction.posted_date < end,
        )
        .group_by(BankTransaction.user_id, month, BankTransaction.category, BankAccount.type, BankAccount.subtype)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [
        MonthlyTotal(user_id, month_first, category, kind, subtype, int(money_in), int(money_out))
        for user_id, month_first, category, kind, subtype, money_in, money_out in rows
    ]


async def success_metrics(engine: AsyncEngine, now: datetime, months: int) -> list[MetricSeries]:
    """The seed's success metrics over the last 30 days and each of the last `months` months."""
    trailing = trailing_window(now)
    calendar_months = month_windows(now, months)
    windows = [trailing, *calendar_months]
    first = add_months(calendar_months[0].start, -1).date()  # the month before the first, to compare with
    rates = savings_rates(await monthly_totals(engine, first, calendar_months[-1].start.date()))
    return programme.success_metrics(
        trailing,
        calendar_months,
        await window_activity(engine, windows),
        await real_time_completion(engine, windows),
        rates,
    )
