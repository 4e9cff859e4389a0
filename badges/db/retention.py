"""Retention: what the programme deletes once it is old enough, whoever it belongs to.

Each rule deletes rows older than a cutoff; the retention Schedule runs them daily and audits
the counts. Open banking adds its rule for transactions (`OpenBankingConfig.dataRetentionDays`).
Closed workflow histories are not here: the Temporal namespace's retention period removes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from badges.db.exports import EXPORT_TTL


@dataclass(frozen=True)
class RetentionRule:
    name: str
    keep_for: timedelta
    statement: str  # deletes rows older than %(cutoff)s


RULES: tuple[RetentionRule, ...] = (
    # An export is produced to be downloaded, not to stay: a copy of everything, sealed.
    RetentionRule("member_exports", EXPORT_TTL, "DELETE FROM member_exports WHERE requested_at < %(cutoff)s"),
)


async def purge(connection: AsyncConnection[Any], now: datetime) -> dict[str, int]:
    """Apply every rule; returns rows deleted per rule."""
    deleted = {}
    for rule in RULES:
        cursor = await connection.execute(rule.statement, {"cutoff": now - rule.keep_for})
        deleted[rule.name] = cursor.rowcount
    return deleted
