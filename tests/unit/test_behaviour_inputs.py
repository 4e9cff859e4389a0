"""What an evaluation makes of the stored rows: a member's correction fixes a category, but never
washes a bet the provider is sure of out of an avoidance badge."""

from __future__ import annotations

from datetime import UTC, date, datetime

from badges.activities.behaviour import picture_of
from badges.db.insights import AccountRow, BehaviourInputs, ConnectionRow, TransactionRow

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def inputs(bet_source: str, bet_category: str) -> BehaviourInputs:
    rows = [
        TransactionRow(f"s{m}", "acc", date(2026, m, 1), 300_000, "income_salary", 0.97, None, False)
        for m in range(1, 6)
    ]
    rows.append(
        TransactionRow(
            "bet", "acc", date(2026, 5, 10), -5_000, bet_category, 1.0 if bet_source == "member" else 0.97, None, False,
            bet_source, "ENTERTAINMENT_CASINOS_AND_GAMBLING", "ENTERTAINMENT", "VERY_HIGH", "7995",
        )
    )  # fmt: skip
    return BehaviourInputs(
        "UTC",
        [AccountRow("acc", "depository", "checking", 100_000)],
        rows,
        [ConnectionRow(None, "active", NOW)],  # type: ignore[arg-type]
    )


def test_a_bet_relabelled_by_the_member_still_counts_against_avoidance() -> None:
    honest = picture_of(inputs("provider", "gambling"), date(2026, 5, 31), NOW)
    relabelled = picture_of(inputs("member", "entertainment"), date(2026, 5, 31), NOW)
    assert honest.snapshot.category_days["gambling"] == [date(2026, 5, 10)]
    assert relabelled.snapshot.category_days["gambling"] == [date(2026, 5, 10)]
    # The spending figures follow the member's word.
    may = relabelled.figures[-1]
    assert may.spending_by_category.get("entertainment") == 5_000 and "gambling" not in may.spending_by_category


def test_a_month_is_complete_once_its_last_day_is_over_and_future_rows_wait() -> None:
    rows = inputs("provider", "gambling")
    ahead = TransactionRow("later", "acc", date(2026, 6, 3), 200_000, "income_salary", 0.97, None, False)
    stored = BehaviourInputs(rows.timezone, rows.accounts, [*rows.transactions, ahead], rows.connections)
    on_the_last_day = picture_of(stored, date(2026, 5, 31), NOW)
    assert [(m.month.month, m.complete) for m in on_the_last_day.figures][-1] == (5, False)
    assert on_the_last_day.snapshot.coverage == (date(2026, 1, 1), date(2026, 5, 30))
    the_day_after = picture_of(stored, date(2026, 6, 1), NOW)
    # May is complete; June's only row, dated the 3rd, is not counted yet.
    assert [(m.month.month, m.complete) for m in the_day_after.figures][-1] == (5, True)
    june = picture_of(stored, date(2026, 6, 3), NOW).figures[-1]
    assert (june.month.month, june.income_minor, june.complete) == (6, 200_000, False)
