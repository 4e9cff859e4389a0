"""Data quality per connection: a persona's fresh connection is good enough to decide from; gaps,
uncategorised transactions, stale syncs, duplicates and implausible balances lower it, with reasons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from badges.banking.sandbox.personas import PERSONAS
from badges.domain.quality import AccountState, DataQuality, Record, assess_quality
from tests.unit.persona_histories import TODAY, persona_history, persona_records

NOW = datetime(2026, 5, 15, 18, tzinfo=UTC)
SYNCED = NOW - timedelta(hours=6)


def _assess(
    username: str = "user_saver",
    records: Sequence[Record] | None = None,
    *,
    accounts: Sequence[AccountState] | None = None,
    last_synced_at: datetime | None = SYNCED,
    window: tuple[date, date] | None = None,
) -> DataQuality:
    return assess_quality(
        persona_records(username) if records is None else records,
        persona_history(username).accounts if accounts is None else accounts,
        last_synced_at,
        NOW,
        window=window,
    )


def test_every_personas_fresh_connection_is_high_quality() -> None:
    for username in PERSONAS:  # every sandbox persona
        quality = _assess(username)
        assert (quality.level, quality.decisions_may_proceed, quality.issues) == ("high", True, ()), username
        assert quality.uncategorised_share < 0.1 and quality.duplicate_share < 0.01 and quality.longest_gap_days < 14


def test_a_stale_sync_warns_then_blocks() -> None:
    three_days = _assess(last_synced_at=NOW - timedelta(days=3))
    assert (three_days.level, three_days.decisions_may_proceed) == ("medium", True)
    assert [i.reason for i in three_days.issues] == ["Last synced 3 days ago: recent transactions may be missing."]
    ten_days = _assess(last_synced_at=NOW - timedelta(days=10))
    assert (ten_days.level, ten_days.decisions_may_proceed) == ("low", False)
    never = _assess(last_synced_at=None)
    assert never.level == "low" and never.issues[0].reason == "This connection has not synced yet."


def test_a_month_missing_from_the_history_is_a_gap() -> None:
    records = [r for r in persona_records("user_saver") if not date(2026, 2, 1) <= r.day <= date(2026, 3, 10)]
    quality = _assess(records=records)
    assert quality.level == "low" and not quality.decisions_may_proceed and quality.longest_gap_days >= 31
    [gap] = [i for i in quality.issues if i.check == "gap"]
    assert gap.severity == "blocking" and gap.reason.startswith("No transactions on Everyday Checking from ")
    # A decision about a later window is not held up by the old gap.
    later = _assess(records=records, window=(date(2026, 4, 1), date(2026, 4, 30)))
    assert later.level == "high" and later.decisions_may_proceed


def test_many_uncategorised_transactions_hold_decisions() -> None:
    records = list(persona_records("user_gambler"))
    unsure = [replace(r, confidence=0.4) if i % 5 == 0 else r for i, r in enumerate(records)]  # 20 %
    assert _assess("user_gambler", unsure).level == "medium"
    unknown = [replace(r, category=None) if i % 3 == 0 else r for i, r in enumerate(records)]  # 33 %
    quality = _assess("user_gambler", unknown)
    assert quality.level == "low" and not quality.decisions_may_proceed
    assert quality.issues[0].check == "uncategorised" and quality.issues[0].reason.startswith("33% of transactions")


def test_duplicated_transactions_lower_quality() -> None:
    records = list(persona_records("user_fastfood"))
    copies = [replace(r, transaction_id=r.transaction_id + "-again") for r in records[::15]]  # about 7 %
    quality = _assess("user_fastfood", records + copies)
    assert quality.level == "low" and quality.duplicate_share > 0.05
    assert (
        quality.issues[0].reason
        == f"{len(copies)} transactions appear more than once (same day, amount and description)."
    )


def test_implausible_balances() -> None:
    current, savings = persona_history("user_saver").accounts
    negative_savings = _assess(accounts=(current, replace(savings, balance_minor=-20_000)))
    assert negative_savings.level == "low"
    assert (
        negative_savings.issues[0].reason
        == "Rainy Day Savings shows a balance of -200.00, which a savings account cannot have."
    )
    overdrawn = _assess(accounts=(replace(current, balance_minor=-900_000), savings))
    assert overdrawn.level == "medium" and overdrawn.issues[0].check == "implausible_balance"
    within_limit = _assess(accounts=(replace(current, balance_minor=-900_000, limit_minor=1_000_000), savings))
    assert within_limit.level == "high"
    card = AccountState("card", "credit", "Card", balance_minor=-400_000, limit_minor=200_000)
    assert _assess(accounts=(current, savings, card)).level == "medium"


def test_a_window_that_opens_before_the_history_starts_waits() -> None:
    history = persona_history("user_saver")
    quality = _assess(window=(history.first_day - timedelta(days=30), history.first_day + timedelta(days=60)))
    assert quality.level == "low" and quality.issues[0].check == "short_history"
    assert _assess(window=(date(2025, 1, 1), date(2025, 3, 31))).level == "high"
    assert NOW.date() == TODAY  # the histories end on the day checked


def test_a_provider_paused_by_its_breaker_holds_decisions_however_fresh_the_last_sync() -> None:
    records = persona_records("user_saver")
    accounts = persona_history("user_saver").accounts
    delayed = assess_quality(records, accounts, SYNCED, NOW, provider_delayed=True)
    assert not delayed.decisions_may_proceed
    assert [(i.check, i.severity) for i in delayed.issues] == [("provider_delayed", "blocking")]
    assert assess_quality(records, accounts, SYNCED, NOW).decisions_may_proceed
