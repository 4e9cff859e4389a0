"""Retention: what the programme deletes once it is old enough, whoever it belongs to.

Each rule deletes rows older than a cutoff; the retention Schedule runs them daily and audits
the counts. Bank transactions are kept for the longest `OpenBankingConfig.dataRetentionDays` of
any active badge (a badge judging two years of behaviour needs two years of data), 730 days when
none says. Closed workflow histories are not here: the Temporal namespace's retention period
removes them.

Hand-written on the psycopg pool: the purge commits in one transaction with its audit record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from badges.db.exports import EXPORT_TTL
from badges.domain.definitions import BadgeDefinition


@dataclass(frozen=True)
class RetentionRule:
    name: str
    keep_for: timedelta
    statement: str  # deletes rows older than %(cutoff)s


DEFAULT_BANK_RETENTION = timedelta(days=730)


def rules(bank_retention: timedelta) -> tuple[RetentionRule, ...]:
    return (
        # An export is produced to be downloaded, not to stay: a copy of everything, sealed.
        RetentionRule("member_exports", EXPORT_TTL, "DELETE FROM member_exports WHERE requested_at < %(cutoff)s"),
        RetentionRule(
            "bank_transactions", bank_retention, "DELETE FROM bank_transactions WHERE posted_date < %(cutoff)s"
        ),
    )


def bank_retention(catalogue: list[BadgeDefinition]) -> timedelta:
    days = [
        badge.config.open_banking.data_retention_days
        for badge in catalogue
        if badge.active and badge.config.open_banking is not None
    ]
    return timedelta(days=max(days)) if days else DEFAULT_BANK_RETENTION


async def purge(connection: AsyncConnection[Any], now: datetime, bank_keep_for: timedelta) -> dict[str, int]:
    """Apply every rule; returns rows deleted per rule."""
    deleted = {}
    for rule in rules(bank_keep_for):
        cursor = await connection.execute(rule.statement, {"cutoff": now - rule.keep_for})
        deleted[rule.name] = cursor.rowcount
    return deleted
