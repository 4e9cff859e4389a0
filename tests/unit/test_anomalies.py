"""Unusual spending against the member's own history, and patterns worth a look: money moved in a
circle between own accounts, income spikes before a window closes. (Savings round trips:
`test_round_trips.py`.)"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sklearn.ensemble import IsolationForest

from badges.banking.sandbox.personas import PERSONAS
from badges.domain.categories import SpendingCategory
from badges.domain.figures import Entry
from badges.insights import anomalies
from badges.insights.anomalies import (
    income_spike_before_close,
    own_account_round_trips,
    unusual_months,
    unusual_transactions,
)
from badges.insights.income import detect_income
from tests.unit.persona_histories import TODAY, persona_history

C = SpendingCategory
SINCE = date(2026, 4, 1)


def _with(username: str, *extra: Entry) -> list[Entry]:
    return sorted([*persona_history(username).entries, *extra], key=lambda e: e.day)


def test_a_first_big_gambling_payment_is_unusual_for_the_saver() -> None:
    bet = Entry(date(2026, 4, 18), -90_000, C.GAMBLING, merchant="DraftKings")
    found = unusual_transactions(_with("user_saver", bet), SINCE, "USD")
    [unusual] = [u for u in found if u.category is C.GAMBLING]
    assert unusual.kind == "transaction" and unusual.amount_minor == 90_000 and unusual.typical_minor == 0
    assert unusual.reason == "$900.00 at DraftKings is your first gambling payment in 23 months."
    # A small first bet is not news.
    small = Entry(date(2026, 4, 18), -500, C.GAMBLING, merchant="DraftKings")
    assert not [u for u in unusual_transactions(_with("user_saver", small), SINCE) if u.category is C.GAMBLING]


def test_a_grocery_shop_ten_times_the_usual_is_unusual_and_says_why() -> None:
    shop = Entry(date(2026, 4, 20), -95_000, C.GROCERIES, merchant="Whole Foods Market")
    found = unusual_transactions(_with("user_gambler", shop), SINCE, "USD")
    [unusual] = [u for u in found if u.category is C.GROCERIES]
    assert unusual.method == "isolation_forest"  # two years of history: the forest judges
    assert (
        unusual.reason.startswith("$950.00 at Whole Foods Market is ")
        and "your usual groceries payment" in unusual.reason
    )
    assert unusual.amount_minor / unusual.typical_minor >= 3


def test_the_forest_is_fitted_only_for_a_payment_it_could_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fitting the forest is most of an evaluation's cost: a month with no payment that could be
    put in words (at least three times the category's usual) does not fit one, and says nothing."""
    fitted: list[int] = []

    class CountedForest(IsolationForest):
        def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> CountedForest:
            fitted.append(len(X))
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(anomalies, "IsolationForest", CountedForest)
    last_month = TODAY - timedelta(days=31)
    assert unusual_transactions(_with("user_gambler"), last_month, "USD") == []
    assert fitted == []
    shop = Entry(TODAY - timedelta(days=3), -95_000, C.GROCERIES, merchant="Whole Foods Market")
    [unusual] = unusual_transactions(_with("user_gambler", shop), last_month, "USD")
    assert unusual.method == "isolation_forest" and unusual.amount_minor == 95_000
    assert len(fitted) == 1 and fitted[0] >= anomalies.FOREST_MIN_TRANSACTIONS


def test_ordinary_histories_raise_few_unusual_transactions() -> None:
    for username in PERSONAS:
        recent = [e for e in persona_history(username).entries if e.day >= SINCE and e.amount_minor < 0]
        found = unusual_transactions(persona_history(username).entries, SINCE)
        assert len(found) <= max(1, len(recent) // 50), (username, [u.reason for u in found])


def test_a_short_history_uses_the_median_and_mad_rule() -> None:
    entries = [
        Entry(date(2026, 1, 1) + timedelta(days=day), -(800 + (day * 37) % 700), C.FAST_FOOD, merchant="KFC")
        for day in range(0, 60, 2)
    ]
    entries.append(Entry(date(2026, 3, 5), -9_500, C.FAST_FOOD, merchant="KFC"))
    entries.append(Entry(date(2026, 3, 6), -1_200, C.FAST_FOOD, merchant="KFC"))
    [unusual] = unusual_transactions(entries, date(2026, 3, 1))
    assert unusual.method == "median_mad" and unusual.amount_minor == 9_500
    typical = f"£{unusual.typical_minor / 100:.2f}"
    assert (
        unusual.reason
        == f"£95.00 at KFC is {9_500 / unusual.typical_minor:.1f}x your usual fast food payment ({typical})."
    )


def test_an_unusual_month_of_fast_food() -> None:
    binge = [Entry(date(2026, 4, 2) + timedelta(days=n), -4_000, C.FAST_FOOD, merchant="McDonald's") for n in range(20)]
    found = unusual_months(_with("user_saver", *binge), SINCE, "USD")
    [april] = [u for u in found if u.category is C.FAST_FOOD]
    assert april.kind == "month" and april.day == date(2026, 4, 1) and april.amount_minor > 80_000
    assert april.reason.startswith("You spent $") and "on fast food in April 2026" in april.reason
    assert not [u for u in unusual_months(_with("user_saver"), SINCE) if u.category is C.FAST_FOOD]


def test_no_persona_moves_money_in_a_circle() -> None:
    for username in PERSONAS:
        assert own_account_round_trips(persona_history(username).entries) == [], username


def test_money_moved_in_a_circle_between_own_accounts() -> None:
    out = Entry(date(2026, 4, 3), -50_000, C.TRANSFER, account="chk")
    other_side = Entry(date(2026, 4, 3), 50_000, C.TRANSFER, account="other")
    back_as_income = Entry(date(2026, 4, 6), 50_000, C.INCOME_OTHER, account="chk", merchant="J DOE")
    [item] = own_account_round_trips([out, other_side, back_as_income])
    assert (item.kind, item.first_day, item.last_day, item.amount_minor) == (
        "own_account_round_trip",
        date(2026, 4, 3),
        date(2026, 4, 6),
        50_000,
    )
    assert "as if it were income" in item.reason
    # One transfer's two sides are not a circle, nor is money that comes back much later.
    assert own_account_round_trips([out, other_side]) == []
    late = Entry(date(2026, 4, 20), 50_000, C.TRANSFER, account="chk")
    assert own_account_round_trips([out, other_side, late]) == []


def test_an_income_spike_right_before_a_window_closes() -> None:
    window = (date(2026, 4, 1), date(2026, 4, 30))
    for username in ("user_saver", "user_irregular_income"):
        entries = _with(username)
        salary = detect_income(entries).salary
        assert income_spike_before_close(entries, window, salary) is None, username  # paydays are not spikes
        spiked = _with(username, Entry(date(2026, 4, 29), 400_000, C.INCOME_OTHER, merchant="A FRIEND"))
        item = income_spike_before_close(spiked, window, salary, currency="USD")
        assert item is not None and item.kind == "income_spike_before_close", username
        assert item.amount_minor >= 400_000 and item.last_day == date(2026, 4, 30)
        assert item.reason.startswith("$") and "before 30 Apr 2026" in item.reason
    # The same money early in the window is no spike.
    early = _with("user_saver", Entry(date(2026, 4, 5), 400_000, C.INCOME_OTHER, merchant="A FRIEND"))
    assert income_spike_before_close(early, window, detect_income(early).salary) is None


def test_no_persona_has_an_income_spike_in_any_month_of_its_history() -> None:
    for username in PERSONAS:
        entries = persona_history(username).entries
        salary = detect_income(entries).salary
        month = date(2024, 9, 1)
        while month < TODAY.replace(day=1):
            end = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            assert income_spike_before_close(entries, (month, end), salary) is None, (username, month)
            month = end + timedelta(days=1)
