"""A member's money month by month: income, spending by category, savings that are real."""

from __future__ import annotations

from datetime import date

from badges.domain.categories import SpendingCategory
from badges.domain.figures import Entry, account_kind, monthly_figures, trends

C = SpendingCategory


def test_a_month_of_income_spending_and_savings() -> None:
    entries = [
        Entry(date(2026, 3, 1), 250_000, C.INCOME_SALARY),
        Entry(date(2026, 3, 2), -90_000, C.RENT_MORTGAGE),
        Entry(date(2026, 3, 5), -1_200, C.FAST_FOOD),
        Entry(date(2026, 3, 6), 300, C.FAST_FOOD),  # a refund
        Entry(date(2026, 3, 8), -5_000, C.GAMBLING),
        Entry(date(2026, 3, 9), -40_000, C.SAVINGS),  # to savings
        Entry(date(2026, 3, 9), 40_000, C.SAVINGS, account_kind="savings"),  # its other side
        Entry(date(2026, 3, 10), -20_000, C.DEBT_REPAYMENT),  # a card repayment: neither
        Entry(date(2026, 3, 11), -15_000, C.TRANSFER),  # between own accounts: neither
        Entry(date(2026, 3, 31), 120, C.INCOME_OTHER, account_kind="savings"),  # interest
    ]
    [march] = monthly_figures(entries)
    assert march.income_minor == 250_120 and march.income_by_kind == {"income_other": 120, "income_salary": 250_000}
    assert march.spending_by_category == {"fast_food": 900, "gambling": 5_000, "rent_mortgage": 90_000}
    assert march.spending_minor == 95_900 and march.savings_minor == 40_000
    assert march.savings_rate == 40_000 / 250_120 and march.complete


def test_money_moved_to_savings_and_straight_back_saves_nothing() -> None:
    entries = [
        Entry(date(2026, 4, 1), 200_000, C.INCOME_SALARY),
        Entry(date(2026, 4, 2), -100_000, C.SAVINGS),
        Entry(date(2026, 4, 3), 100_000, C.SAVINGS),
    ]
    [april] = monthly_figures(entries)
    assert april.savings_minor == 0 and april.savings_rate == 0


def test_coverage_makes_months_partial_and_adds_empty_ones() -> None:
    entries = [Entry(date(2026, 1, 20), 100_000, C.INCOME_SALARY)]
    january, february = monthly_figures(entries, coverage=(date(2026, 1, 15), date(2026, 2, 28)))
    assert (january.covered_days, january.complete) == (17, False)
    assert (february.covered_days, february.complete, february.transactions) == (28, True, 0)
    assert february.savings_rate is None  # no income: no rate


def test_trends_month_on_month_and_year_on_year() -> None:
    entries = [
        Entry(date(2025, 3, 4), -10_000, C.FAST_FOOD),
        Entry(date(2026, 2, 4), -8_000, C.FAST_FOOD),
        Entry(date(2026, 3, 4), -6_000, C.FAST_FOOD),
    ]
    figures = monthly_figures(entries, coverage=(date(2025, 3, 1), date(2026, 3, 31)))
    last = trends(figures, "spending:fast_food")[-1]
    assert last.month == date(2026, 3, 1) and last.value == 6_000
    assert last.month_on_month == -0.25 and last.year_on_year == -0.4
    assert trends(figures, "spending_minor")[0].month_on_month is None  # nothing before it


def test_account_kinds() -> None:
    assert account_kind("depository", "savings") == "savings"
    assert account_kind("investment", None) == "savings"
    assert account_kind("credit", "credit card") == "credit"
    assert account_kind("depository", "checking") == "current"
    assert account_kind("TRANSACTION", None) == "current"
