"""How far a connection's data can be trusted, checked before a behavioural decision is made from
it, and shown to the member with its reasons. Pure: `now` is passed in.

Checks, each a warning (quality `medium`: decisions proceed, the member is told) or blocking
(quality `low`: decisions about the affected period wait, and say why):

- **stale sync**: last synced more than 2 days ago warns, more than 7 days (or never) blocks;
- **short history**: the history starts after the window being decided opens (blocks);
- **gaps**: the longest run of days with no posted transaction on a current account, within the
  period checked (the window, or the whole history, up to today): over 14 days warns, over 30 blocks
  (an everyday account is rarely quiet for a month: it means missing data);
- **uncategorised**: the share of posted transactions with no category, or one below `CONFIDENT`:
  over 10 % warns, over 25 % blocks;
- **duplicates**: extra copies of one transaction under new ids (same account, day, amount and
  description): over 1 % warns, over 5 % blocks;
- **implausible balances**: a savings account below zero, or any balance beyond a billion, blocks;
  a current account overdrawn beyond its limit (or 5,000.00 when none is known), or a card owing
  more than one and a half times its limit, warns.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from badges.domain.categories import CONFIDENT, SpendingCategory

QualityLevel = Literal["high", "medium", "low"]
Severity = Literal["warning", "blocking"]
Check = Literal[
    "stale_sync", "provider_delayed", "short_history", "gap", "uncategorised", "duplicates", "implausible_balance"
]

STALE_WARN = timedelta(days=2)
STALE_BLOCK = timedelta(days=7)
GAP_WARN_DAYS = 14
GAP_BLOCK_DAYS = 30
UNCATEGORISED_WARN = 0.10
UNCATEGORISED_BLOCK = 0.25
DUPLICATES_WARN = 0.01
DUPLICATES_BLOCK = 0.05
UNKNOWN_OVERDRAFT_MINOR = 500_000
IMPLAUSIBLE_MINOR = 100_000_000_000  # a billion in major units
CARD_OVER_LIMIT = 1.5
_NOISE = re.compile(r"[\W\d_]+")


@dataclass(frozen=True)
class Record:
    """One transaction as the connection holds it."""

    transaction_id: str
    account_id: str
    day: date
    amount_minor: int
    description: str = ""
    category: SpendingCategory | None = None  # None: not categorised
    confidence: float = 1.0
    pending: bool = False


@dataclass(frozen=True)
class AccountState:
    account_id: str
    kind: str  # current, credit, savings (`figures.account_kind`)
    name: str = ""
    balance_minor: int | None = None  # positive in credit; a card's balance is what is owed, negative
    limit_minor: int | None = None  # a card's credit limit or an arranged overdraft


@dataclass(frozen=True)
class QualityIssue:
    check: Check
    severity: Severity
    reason: str


@dataclass(frozen=True)
class DataQuality:
    level: QualityLevel
    decisions_may_proceed: bool
    issues: tuple[QualityIssue, ...]
    uncategorised_share: float
    duplicate_share: float
    longest_gap_days: int
    days_since_sync: float | None


def assess_quality(
    records: Iterable[Record],
    accounts: Sequence[AccountState],
    last_synced_at: datetime | None,
    now: datetime,
    window: tuple[date, date] | None = None,
    history_start: date | None = None,
    today: date | None = None,
    provider_delayed: bool = False,
) -> DataQuality:
    """The connection's data quality, for the `window` a decision is about (first and last day,
    inclusive) or its whole history up to `today` (the member's date; by default `now`'s).
    `now` is the clock the sync's time was stamped by. `history_start` is the first day the
    provider covers (by default the first transaction's). `provider_delayed`: a connection's
    provider is paused by its breaker (an outage), so what has not arrived may yet."""
    today = today or now.date()
    posted = [r for r in records if not r.pending]
    issues: list[QualityIssue] = []
    names = {a.account_id: a.name or "an account" for a in accounts}

    days_since_sync = None
    if last_synced_at is None:
        issues.append(QualityIssue("stale_sync", "blocking", "This connection has not synced yet."))
    else:
        age = now - last_synced_at
        days_since_sync = round(age.total_seconds() / 86_400, 2)
        if age > STALE_WARN:
            severity: Severity = "blocking" if age > STALE_BLOCK else "warning"
            reason = f"Last synced {age.days} days ago: recent transactions may be missing."
            issues.append(QualityIssue("stale_sync", severity, reason))
    if provider_delayed:
        reason = "Your bank's data is delayed: its provider is not answering, so decisions wait for it."
        issues.append(QualityIssue("provider_delayed", "blocking", reason))

    first_day = history_start or min((r.day for r in posted), default=today)
    start, end = first_day, today
    if window is not None:
        if first_day > window[0]:
            reason = (
                f"Your history starts on {first_day:%-d %b %Y}, after the period from "
                f"{window[0]:%-d %b %Y} it would be judged on."
            )
            issues.append(QualityIssue("short_history", "blocking", reason))
        start, end = max(window[0], first_day), min(window[1], today)
    in_period = [r for r in posted if start <= r.day <= end]

    longest_gap = 0
    for account in accounts:
        if account.kind != "current":
            continue
        gap, gap_start, gap_end = _longest_gap(
            [r.day for r in in_period if r.account_id == account.account_id], start, end
        )
        longest_gap = max(longest_gap, gap)
        if gap > GAP_WARN_DAYS:
            reason = (
                f"No transactions on {names[account.account_id]} from {gap_start:%-d %b} to "
                f"{gap_end:%-d %b %Y} ({gap} days): part of the history may be missing."
            )
            issues.append(QualityIssue("gap", "blocking" if gap > GAP_BLOCK_DAYS else "warning", reason))

    uncategorised = sum(r.category is None or r.confidence < CONFIDENT for r in in_period)
    uncategorised_share = uncategorised / len(in_period) if in_period else 0.0
    if uncategorised_share > UNCATEGORISED_WARN:
        reason = (
            f"{uncategorised_share:.0%} of transactions could not be categorised with confidence: "
            "check their categories so they count."
        )
        severity = "blocking" if uncategorised_share > UNCATEGORISED_BLOCK else "warning"
        issues.append(QualityIssue("uncategorised", severity, reason))

    copies = Counter((r.account_id, r.day, r.amount_minor, _NOISE.sub("", r.description.lower())) for r in in_period)
    extra = sum(count - 1 for count in copies.values())
    duplicate_share = extra / len(in_period) if in_period else 0.0
    if duplicate_share > DUPLICATES_WARN:
        reason = f"{extra} transactions appear more than once (same day, amount and description)."
        severity = "blocking" if duplicate_share > DUPLICATES_BLOCK else "warning"
        issues.append(QualityIssue("duplicates", severity, reason))

    issues += _balance_issues(accounts, names)

    level: QualityLevel = "high"
    if any(issue.severity == "blocking" for issue in issues):
        level = "low"
    elif issues:
        level = "medium"
    return DataQuality(
        level=level,
        decisions_may_proceed=level != "low",
        issues=tuple(issues),
        uncategorised_share=round(uncategorised_share, 4),
        duplicate_share=round(duplicate_share, 4),
        longest_gap_days=longest_gap,
        days_since_sync=days_since_sync,
    )


def _longest_gap(days: Sequence[date], start: date, end: date) -> tuple[int, date, date]:
    """The longest run of days from `start` to `end` with none of `days` (its length, first and
    last day)."""
    if start > end:
        return 0, start, end
    seen = sorted({day for day in days if start <= day <= end})
    longest = (0, start, start)
    previous = start - timedelta(days=1)
    for day in [*seen, end + timedelta(days=1)]:
        empty = (day - previous).days - 1
        if empty > longest[0]:
            longest = (empty, previous + timedelta(days=1), day - timedelta(days=1))
        previous = day
    return longest


def _balance_issues(accounts: Sequence[AccountState], names: dict[str, str]) -> list[QualityIssue]:
    issues = []
    for account in accounts:
        balance = account.balance_minor
        if balance is None:
            continue
        name = names[account.account_id]
        shown = f"{balance / 100:,.2f}"
        if abs(balance) >= IMPLAUSIBLE_MINOR:
            issues.append(QualityIssue("implausible_balance", "blocking", f"{name} shows a balance of {shown}."))
        elif account.kind == "savings" and balance < 0:
            reason = f"{name} shows a balance of {shown}, which a savings account cannot have."
            issues.append(QualityIssue("implausible_balance", "blocking", reason))
        elif account.kind == "current" and balance < -(account.limit_minor or UNKNOWN_OVERDRAFT_MINOR):
            reason = f"{name} shows {shown}, overdrawn beyond what its bank would normally allow."
            issues.append(QualityIssue("implausible_balance", "warning", reason))
        elif account.kind == "credit" and account.limit_minor and -balance > CARD_OVER_LIMIT * account.limit_minor:
            reason = f"{name} shows {shown} owed, far beyond its limit of {account.limit_minor / 100:,.2f}."
            issues.append(QualityIssue("implausible_balance", "warning", reason))
    return issues
