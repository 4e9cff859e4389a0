"""What a peer-statistics release reads about one member (`peer_inputs`), and how it is drawn from
their newest behaviour evaluation and their demographics. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True, slots=True)
class PeerInput:
    """One consenting member's latest figures and group keys. Any of them may be missing (no
    complete month yet, no regular income, no demographics consent): a member is then in the
    groups their keys allow, and in the statistics their values allow."""

    month: date | None = None
    savings_rate: float | None = None
    # A typical month's income (the evaluation's monthly median), in minor units.
    salary_minor: int | None = None
    # The last complete month's spending by category, in minor units.
    spending: dict[str, int] = field(default_factory=dict)
    postcode_district: str | None = None
    age_range: str | None = None
    dependants: int | None = None
    salary_bracket: str | None = None


def peer_input(document: dict[str, Any], demographics: dict[str, Any] | None) -> PeerInput:
    """The member's figures from their evaluation's document (as the financial profile reads them:
    the last complete month's savings rate and spending, the typical monthly income) and their
    group keys from their demographics (None: none held)."""
    complete = [month for month in document.get("months", []) if month.get("complete")]
    last = complete[-1] if complete else {}
    income = document.get("income") or {}
    held = demographics or {}
    dependants = held.get("dependants")
    return PeerInput(
        month=date.fromisoformat(last["month"]) if last.get("month") else None,
        savings_rate=last.get("savingsRate"),
        salary_minor=income.get("monthlyMedianMinor") or None,
        spending={str(k): int(v) for k, v in (last.get("spendingByCategory") or {}).items()},
        postcode_district=held.get("postcode"),
        age_range=held.get("ageRange"),
        dependants=int(dependants) if dependants is not None else None,
        salary_bracket=held.get("salaryBracket"),
    )
