"""End-of-month spending, savings and income from the month so far and the bills still to come;
a savings goal's expected completion date."""

from __future__ import annotations

from datetime import date

import pytest

from badges.domain.categories import SpendingCategory
from badges.domain.figures import Entry, MonthFigures, monthly_figures
from badges.insights.income import detect_income, detect_recurring
from badges.insights.predictions import goal_forecast, predict_month
from tests.unit.persona_histories import persona_history

C = SpendingCategory


def _known(username: str, as_of: date) -> list[Entry]:
    return [e for e in persona_history(username).entries if e.day <= as_of]


@pytest.mark.parametrize("username", ["user_saver", "user_gambler", "user_good", "user_fastfood"])
@pytest.mark.parametrize("as_of", [date(2026, 2, 10), date(2026, 3, 12), date(2026, 3, 22)])
def test_a_persona_month_is_predicted_from_its_first_days(username: str, as_of: date) -> None:
    known = _known(username, as_of)
    prediction = predict_month(known, as_of, detect_recurring(known, as_of), detect_income(known, as_of))
    actual = next(f for f in monthly_figures(persona_history(username).entries) if f.month == as_of.replace(day=1))
    assert prediction.predicted_spending_minor == pytest.approx(actual.spending_minor, rel=0.25)
    assert prediction.predicted_income_minor == pytest.approx(actual.income_minor, rel=0.05)
    assert prediction.predicted_savings_minor == pytest.approx(actual.savings_minor, rel=0.1)
    assert prediction.predicted_spending_minor == (
        prediction.spent_so_far_minor
        + sum(bill.amount_minor for bill in prediction.bills_to_come)
        + prediction.everyday_to_come_minor
    )
    assert sum(prediction.predicted_by_category.values()) == pytest.approx(prediction.predicted_spending_minor, abs=10)


def test_the_bills_still_to_come_are_the_ones_due_after_today() -> None:
    as_of = date(2026, 3, 12)
    known = _known("user_saver", as_of)
    prediction = predict_month(known, as_of, detect_recurring(known, as_of), detect_income(known, as_of))
    due = {(bill.merchant, bill.day) for bill in prediction.bills_to_come}
    # Con Edison on the 14th, Verizon on the 20th; rent (the 1st) and Comcast (the 5th) are paid.
    assert ("Con Edison", date(2026, 3, 14)) in due and ("Verizon", date(2026, 3, 20)) in due
    assert not {merchant for merchant, _ in due} & {"Greystar", "Comcast"}
    assert all(bill.day > as_of for bill in prediction.bills_to_come)
    # The card repayment is not spending; the saving on the 28th is savings, and payday is income.
    assert all(bill.kind in ("bill", "subscription") for bill in prediction.bills_to_come)
    # The saving follows payday by a day; it is expected on its usual day of the month.
    [saving] = prediction.savings_to_come
    assert saving.day in (date(2026, 3, 28), date(2026, 3, 29)) and saving.amount_minor == pytest.approx(
        121_000, rel=0.03
    )
    assert [p.day for p in prediction.income_to_come] == [date(2026, 3, 27)]  # the 28th is a Saturday
    assert prediction.predicted_savings_rate == pytest.approx(0.25, abs=0.01)


def test_a_raised_standing_order_is_expected_at_its_new_amount() -> None:
    as_of = date(2026, 4, 10)  # the improver saves 15 % since February, 2 % before
    known = _known("user_improver", as_of)
    prediction = predict_month(known, as_of, detect_recurring(known, as_of), detect_income(known, as_of))
    actual = next(f for f in monthly_figures(persona_history("user_improver").entries) if f.month == date(2026, 4, 1))
    assert prediction.predicted_savings_minor == pytest.approx(actual.savings_minor, rel=0.05)


def test_a_bill_seen_on_its_day_in_a_hand_made_month() -> None:
    entries = [Entry(date(2026, m, 3), -5_000, C.BILLS_UTILITIES, merchant="THAMES WATER") for m in (1, 2, 3)]
    entries += [Entry(date(2026, m, 25), 200_000, C.INCOME_SALARY, merchant="ACME") for m in (1, 2, 3)]
    entries += [Entry(date(2026, 4, 2), -3_000, C.GROCERIES, merchant="TESCO")]
    as_of = date(2026, 4, 2)
    prediction = predict_month(entries, as_of, detect_recurring(entries, as_of), detect_income(entries, as_of))
    [water] = prediction.bills_to_come
    assert (water.day, water.amount_minor) == (date(2026, 4, 3), 5_000)
    assert [(p.day, p.amount_minor) for p in prediction.income_to_come] == [(date(2026, 4, 25), 200_000)]
    # Everyday spending: 15.00 a day so far, none in the months before; two days into the month
    # the member's own months weigh 28/30: (2/30 * 1,500 + 28/30 * 0) a day for 28 days.
    assert prediction.everyday_to_come_minor == 2_800
    assert prediction.predicted_spending_minor == 3_000 + 5_000 + 2_800
    alone = predict_month(entries[-1:], as_of, [], None)  # no history at all: the month's own pace
    assert alone.everyday_to_come_minor == 1_500 * 28


def _month(month: int, saved: int) -> MonthFigures:
    return MonthFigures(date(2026, month, 1), 300_000, {}, 200_000, {}, saved, 0, 40, 28 if month == 2 else 31)


def test_a_goal_is_reached_at_the_recent_pace() -> None:
    months = [_month(1, 10_000), _month(2, 30_000), _month(3, 20_000)]  # 200.00 a month on average
    forecast = goal_forecast(200_000, 80_000, months, as_of=date(2026, 4, 10))
    assert forecast.pace_per_month_minor == 20_000 and not forecast.reached
    # 1,200.00 left at 200.00 a month: six average months (183 days) on.
    assert forecast.expected_completion == date(2026, 10, 10)
    assert forecast.on_track is None and "around 10 October 2026" in forecast.reason


def test_a_goal_against_its_deadline() -> None:
    months = [_month(1, 20_000), _month(2, 20_000), _month(3, 20_000)]
    late = goal_forecast(200_000, 80_000, months, as_of=date(2026, 4, 10), deadline=date(2026, 7, 10))
    # 1,200.00 in 91 days, 2.99 average months.
    assert late.on_track is False and late.needed_per_month_minor == 40_138
    assert "put aside about 401.38 a month" in late.reason
    on_time = goal_forecast(200_000, 80_000, months, as_of=date(2026, 4, 10), deadline=date(2026, 12, 31))
    assert on_time.on_track is True


def test_a_goal_with_no_saving_pace_or_already_reached() -> None:
    still = goal_forecast(100_000, 10_000, [_month(1, 0), _month(2, -5_000), _month(3, 0)], as_of=date(2026, 4, 1))
    assert still.expected_completion is None and still.pace_per_month_minor < 0
    done = goal_forecast(100_000, 120_000, [], as_of=date(2026, 4, 1))
    assert done.reached and done.expected_completion == date(2026, 4, 1)


def test_a_persona_goal_uses_its_own_months() -> None:
    history = persona_history("user_saver")
    as_of = date(2026, 5, 15)
    forecast = goal_forecast(1_000_000, 0, monthly_figures(history.entries), as_of)
    assert forecast.pace_per_month_minor == pytest.approx(121_000, rel=0.03)
    assert forecast.expected_completion is not None
    assert date(2026, 12, 15) <= forecast.expected_completion <= date(2027, 2, 15)  # about 8 months
