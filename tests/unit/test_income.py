"""Salary, pay frequency, next pay date and recurring bills, detected from the sandbox personas'
histories and from hand-made ones."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from badges.banking.sandbox.catalogue import UK
from badges.domain.categories import SpendingCategory
from badges.domain.figures import Entry
from badges.insights.income import detect_income, detect_recurring
from tests.unit.persona_histories import TODAY, persona_history

C = SpendingCategory


def _payday_28th_or_friday_before(month: date) -> date:
    """The sandbox's monthly payday: the 28th, or the working day before it."""
    day = month.replace(day=28)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


@pytest.mark.parametrize("username", ["user_saver", "user_gambler", "user_fastfood", "user_improver"])
@pytest.mark.parametrize("today", [TODAY, date(2026, 6, 10), date(2026, 2, 3)])
def test_a_salaried_persona_is_paid_monthly_and_the_next_payday_is_right(username: str, today: date) -> None:
    history = persona_history(username, today)
    income = detect_income(history.entries, as_of=today, coverage=(history.first_day, today))
    assert income.frequency == "monthly" and income.regular
    assert income.salary is not None and income.salary.category is C.INCOME_SALARY
    expected = _payday_28th_or_friday_before(today.replace(day=1))
    assert income.next_expected == expected  # 28 Jun 2026 is a Sunday: Friday the 26th
    pays = [e.amount_minor for e in history.entries if e.category is C.INCOME_SALARY]
    assert min(pays) <= income.typical_minor <= max(pays)


def test_the_weekend_rule_is_learned_not_assumed() -> None:
    assert detect_income(persona_history("user_saver", date(2026, 6, 10)).entries).next_expected == date(2026, 6, 26)


def test_a_fortnightly_persona_is_paid_fortnightly() -> None:
    history = persona_history("user_good")
    income = detect_income(history.entries, as_of=TODAY)
    assert (income.frequency, income.regular) == ("fortnightly", True)
    assert income.salary is not None and income.next_expected == income.salary.last_paid + timedelta(days=14)


def test_the_gig_workers_income_is_irregular() -> None:
    history = persona_history("user_irregular_income")
    income = detect_income(history.entries, as_of=TODAY, coverage=(history.first_day, TODAY))
    assert (income.frequency, income.regular, income.salary, income.next_expected) == ("irregular", False, None, None)
    assert len(income.streams) == 4 and all(not stream.regular for stream in income.streams)
    assert income.monthly_median_minor > 0 and income.monthly_variation is not None
    assert income.monthly_variation > 0.3  # and far more than a salary's month to month
    salaried = detect_income(persona_history("user_saver").entries).monthly_variation
    assert salaried is not None and salaried < 0.1


def test_the_gig_worker_in_the_uk_is_irregular_too() -> None:
    history = persona_history("user_irregular_income", market=UK)
    assert not detect_income(history.entries, as_of=TODAY).regular


def _pay(
    days: list[date], amount: int = 200_000, payer: str = "ACME LTD", category: C = C.INCOME_SALARY
) -> list[Entry]:
    return [Entry(day, amount, category, merchant=payer) for day in days]


def test_weekly_four_weekly_and_last_working_day_pay() -> None:
    weekly = detect_income(_pay([date(2026, 1, 2) + timedelta(weeks=n) for n in range(10)], 60_000))
    assert (weekly.frequency, weekly.next_expected) == ("weekly", date(2026, 3, 13))
    four_weekly = detect_income(_pay([date(2026, 1, 9) + timedelta(weeks=4 * n) for n in range(6)]))
    assert (four_weekly.frequency, four_weekly.next_expected) == ("four_weekly", date(2026, 6, 26))
    # The last working day of each month (31 Jan 2026 is a Saturday: paid Friday the 30th).
    last_working = [date(2025, 11, 28), date(2025, 12, 31), date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 31)]
    monthly = detect_income(_pay(last_working))
    assert (monthly.frequency, monthly.next_expected) == ("monthly", date(2026, 4, 30))
    assert monthly.salary is not None and monthly.salary.schedule.shift in ("last_working_day", "before")


def test_a_large_regular_inflow_from_one_payer_is_salary_even_uncategorised() -> None:
    days = [date(2026, month, 15) for month in range(1, 6)]
    income = detect_income(_pay(days, 250_000, "NORTHWIND LOGISTICS REF 123", C.OTHER))
    assert income.salary is not None and income.regular and income.frequency == "monthly"
    assert income.next_expected == date(2026, 6, 15)


def test_a_small_regular_side_income_does_not_make_gig_work_regular() -> None:
    gigs = _pay(
        [date(2026, 1, 3), date(2026, 1, 4), date(2026, 1, 19), date(2026, 2, 24), date(2026, 3, 2)],
        90_000,
        "UBER",
        C.INCOME_OTHER,
    )
    gigs += _pay(
        [date(2026, 1, 11), date(2026, 2, 2), date(2026, 2, 9), date(2026, 3, 21)], 120_000, "DELIVEROO", C.INCOME_OTHER
    )
    rent_from_lodger = _pay([date(2026, m, 1) for m in (1, 2, 3)], 40_000, "J SMITH", C.INCOME_OTHER)
    income = detect_income(gigs + rent_from_lodger)
    assert not income.regular and income.frequency == "irregular"


def test_pay_varying_a_lot_is_not_regular() -> None:
    days = [date(2026, month, 28) for month in range(1, 7)]
    entries = [
        Entry(day, amount, C.INCOME_SALARY, merchant="AGENCY")
        for day, amount in zip(days, [90_000, 210_000, 40_000, 160_000, 300_000, 120_000], strict=True)
    ]
    income = detect_income(entries)
    assert not income.regular and income.frequency == "irregular"


def test_a_missed_payday_rolls_the_next_date_on() -> None:
    income = detect_income(_pay([date(2026, m, 15) for m in range(1, 5)]), as_of=date(2026, 5, 20))
    assert income.next_expected == date(2026, 6, 15) and income.salary is not None and income.salary.missed == 1


def test_the_personas_bills_and_subscriptions_recur() -> None:
    recurring = {r.merchant: r for r in detect_recurring(persona_history("user_saver").entries, as_of=TODAY)}
    rent = next(r for r in recurring.values() if r.category is C.RENT_MORTGAGE)
    assert (rent.kind, rent.frequency, rent.typical_minor, rent.next_expected) == (
        "bill",
        "monthly",
        130_000,
        date(2026, 6, 1),
    )
    assert recurring["Comcast"].typical_minor == 7_999 and recurring["Comcast"].next_expected == date(2026, 6, 5)
    assert recurring["Con Edison"].kind == "bill"  # a utility bill that follows the season still recurs
    subscriptions = [r for r in recurring.values() if r.kind == "subscription"]
    assert len(subscriptions) == 2 and all(r.occurrences >= 3 and r.active for r in subscriptions)
    [saving] = [r for r in recurring.values() if r.kind == "saving"]
    assert saving.next_expected == date(2026, 5, 29)  # the day after payday
    # Shopping, eating out and fast food come round often, but at no interval.
    assert not {r.category for r in recurring.values()} & {C.FAST_FOOD, C.EATING_OUT, C.GROCERIES, C.SHOPPING}


def test_every_personas_subscriptions_are_found() -> None:
    for username, expected in (("user_spender", 6), ("user_improver", 5), ("user_irregular_income", 2)):
        recurring = detect_recurring(persona_history(username).entries, as_of=TODAY)
        assert sum(r.kind == "subscription" for r in recurring) == expected, username


def test_recurring_needs_three_payments_similar_amounts_and_a_schedule() -> None:
    def charges(days: list[date], amounts: list[int], merchant: str = "NETFLIX.COM") -> list[Entry]:
        return [Entry(d, -a, C.SUBSCRIPTIONS, merchant=merchant) for d, a in zip(days, amounts, strict=True)]

    monthly = [date(2026, m, 7) for m in range(1, 5)]
    assert [r.frequency for r in detect_recurring(charges(monthly, [1_099] * 4))] == ["monthly"]
    assert detect_recurring(charges(monthly[:2], [1_099] * 2)) == []  # two are not a pattern
    assert detect_recurring(charges(monthly, [1_099, 5_000, 300, 2_500])) == []  # amounts all over
    scattered = [date(2026, 1, 2), date(2026, 1, 5), date(2026, 2, 20), date(2026, 4, 1)]
    assert detect_recurring(charges(scattered, [1_099] * 4)) == []  # no schedule
    cancelled = detect_recurring(charges(monthly, [1_099] * 4), as_of=date(2026, 7, 20))
    assert [r.active for r in cancelled] == [False]  # two payments missed: probably cancelled
