"""`OpenBankingConfig` does what each name says: `accountTypes`, `analysisCategories` and
`providers` narrow the transactions a badge is decided on (the behaviour evaluation's own path,
`scoped_verdicts`, on stored rows), `syncIntervalHours` sets how often connections sync, and a
category outside the taxonomy is refused. (`minimumHistoryMonths` is held in test_financial.py,
`dataRetentionDays` in tests/integration/test_retention.py.)"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from badges.activities.behaviour import picture_of, scoped_verdicts
from badges.db.insights import AccountRow, BehaviourInputs, ConnectionRow, TransactionRow
from badges.domain.definitions import BadgeDefinition, BadgeSpec, OpenBankingConfig, bank_sync_interval

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
TODAY = date(2026, 5, 31)
NO_FAST_FOOD = {"kind": "avoidance", "category": "fast_food", "windowDays": 30}


def badge(badge_id: str, rule: dict[str, Any] = NO_FAST_FOOD, **open_banking: Any) -> BadgeDefinition:
    config = {"openBanking": {"minimumHistoryMonths": 1, **open_banking}}
    spec = BadgeSpec.model_validate({"name": badge_id, "rule": rule, "config": config})
    return BadgeDefinition.from_spec(badge_id, 1, spec)


def stored() -> BehaviourInputs:
    """Pay and groceries on a Plaid checking account; fast food, weekly, only on a Yodlee credit card."""
    rows = []
    for month in range(1, 6):
        rows.append(
            TransactionRow(f"pay{month}", "chk", date(2026, month, 1), 300_000, "income_salary", 0.97, None, False)
        )
        rows.append(TransactionRow(f"shop{month}", "chk", date(2026, month, 3), -8_000, "groceries", 0.97, None, False))
        for day in (5, 12, 19, 26):  # weekly: no 30 days without one
            burger = TransactionRow(
                f"burger{month}-{day}", "card", date(2026, month, day), -900, "fast_food", 0.97, None, False
            )
            rows.append(burger)
    accounts = [
        AccountRow("chk", "depository", "checking", 100_000, "plaid"),
        AccountRow("card", "credit", "credit card", -2_000, "yodlee"),
    ]
    return BehaviourInputs("UTC", accounts, rows, [ConnectionRow(None, "active", NOW)])  # type: ignore[arg-type]


async def verdicts(*badges: BadgeDefinition) -> dict[str, list[str]]:
    inputs = stored()
    picture = picture_of(inputs, TODAY, NOW)
    found = await scoped_verdicts(list(badges), picture, inputs, TODAY, NOW, [], [])
    assert [v.badge_id for v in found] == [b.badge_id for b in badges]  # in the catalogue's order
    return {verdict.badge_id: verdict.earned for verdict in found}


async def test_account_types_choose_the_accounts_a_badge_looks_at() -> None:
    earned = await verdicts(badge("everything"), badge("checking_only", accountTypes=["checking"]))
    assert earned["everything"] == []  # the card's burgers break every 30-day window
    assert earned["checking_only"]  # the checking account alone has no fast food


async def test_analysis_categories_choose_what_a_badge_analyses() -> None:
    earned = await verdicts(badge("all"), badge("groceries", analysisCategories=["groceries", "income_salary"]))
    assert earned["all"] == [] and earned["groceries"]  # fast food is not what it analyses
    with pytest.raises(ValidationError, match="not categories of the programme's taxonomy: burgers"):
        OpenBankingConfig.model_validate({"analysisCategories": ["burgers"]})


async def test_providers_choose_whose_data_a_badge_reads() -> None:
    earned = await verdicts(
        badge("any"), badge("plaid_only", providers=["plaid"]), badge("yodlee", providers=["yodlee"])
    )
    assert earned["any"] == [] and earned["plaid_only"] and earned["yodlee"] == []


def test_sync_interval_hours_is_the_shortest_any_active_badge_asks_never_longer_than_the_deployments() -> None:
    six = timedelta(hours=6)
    assert bank_sync_interval([], six) == six
    assert bank_sync_interval([badge("a", syncIntervalHours=24)], six) == six
    hourly = badge("b", syncIntervalHours=1)
    assert bank_sync_interval([badge("a", syncIntervalHours=24), hourly], six) == timedelta(hours=1)
    retired = hourly.model_copy(update={"active": False})
    assert bank_sync_interval([retired], six) == six
