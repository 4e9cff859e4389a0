"""Programme figures for operators, counted across the member, receipt, award and outbox tables."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.db.members import Member
from badges.db.outbox import OutboxEntry
from badges.db.progress import AwardRow
from badges.db.receipts import EventReceiptRow


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
