"""The financial health score: the personas score as their habits imply, and what bank data cannot
see is left out, not guessed."""

from __future__ import annotations

from datetime import date

import pytest

from badges.domain.categories import SpendingCategory
from badges.domain.figures import Entry, MonthFigures, monthly_figures
from badges.domain.health import (
    UNOBSERVABLE,
    HealthScore,
    Observed,
    band,
    health_score,
    is_penalty_fee,
    observations,
    scored_months,
)
from tests.unit.persona_histories import TODAY, persona_history

C = SpendingCategory


def _persona_score(username: str, balances: bool = True) -> HealthScore:
    history = persona_history(username)
    months = monthly_figures(history.entries, coverage=(history.first_day, TODAY))
    liquid = history.savings_balance_minor + max(0, history.current_balance_minor) if balances else None
    observed = observations(
        history.entries, scored_months(months, TODAY), penalty_fee_days=[], liquid_savings_minor=liquid
    )
    return health_score(months, TODAY, observed)


def test_the_saver_scores_healthier_than_the_gambler() -> None:
    saver, gambler, spender = (_persona_score(u) for u in ("user_saver", "user_gambler", "user_spender"))
    assert saver.score is not None and gambler.score is not None and spender.score is not None
    assert saver.score > gambler.score > spender.score
    assert (saver.band, gambler.band, spender.band) == ("healthy", "coping", "vulnerable")
    by_indicator = {c.indicator: c for c in gambler.components}
    assert by_indicator["long_term_savings"].score is not None and by_indicator["long_term_savings"].score < 50
    assert saver.months_read == 12


def test_unobservable_indicators_are_left_out_and_the_weights_renormalised() -> None:
    score = _persona_score("user_saver")
    components = {c.indicator: c for c in score.components}
    assert len(components) == 8
    for indicator in ("credit_score", "insurance", "plans_ahead"):
        assert components[indicator].observed is False and components[indicator].score is None
        assert components[indicator].weight == 0 and components[indicator].reason == UNOBSERVABLE[indicator]
    observed = [c for c in score.components if c.observed]
    assert len(observed) == 5 and sum(c.weight for c in observed) == pytest.approx(1)
    assert score.score == round(sum(c.score * c.weight for c in observed if c.score is not None))


def test_without_balances_liquid_savings_is_not_observed_either() -> None:
    score = _persona_score("user_gambler", balances=False)
    liquid = next(c for c in score.components if c.indicator == "liquid_savings")
    assert not liquid.observed and liquid.reason == "No account balances yet."
    assert sum(c.observed for c in score.components) == 4
    assert sum(c.weight for c in score.components) == pytest.approx(1)


def _months(income: int, spending: int, savings: int, count: int = 12, fees: int = 0) -> list[MonthFigures]:
    return [
        MonthFigures(
            month=date(2025, month, 1),
            income_minor=income,
            income_by_kind={"income_salary": income},
            spending_minor=spending,
            spending_by_category={"groceries": spending - fees, "fees": fees} if fees else {"groceries": spending},
            savings_minor=savings,
            fees_minor=fees,
            transactions=30,
            covered_days=31 if month in (1, 3, 5, 7, 8, 10, 12) else 30 if month != 2 else 28,
            savings_rate=savings / income if income else None,
        )
        for month in range(1, count + 1)
    ]


def test_each_observed_indicator_scores_on_the_finhealth_scale() -> None:
    as_of = date(2026, 1, 10)
    months = _months(income=300_000, spending=270_000, savings=30_000)  # 10 % margin and saving rate
    score = health_score(months, as_of, Observed(debt_repayments_minor=12 * 60_000, liquid_savings_minor=810_000))
    by_indicator = {c.indicator: c for c in score.components}
    assert by_indicator["spend_less_than_income"].score == 88  # between +5 % (75) and +15 % (100)
    assert by_indicator["long_term_savings"].score == 75  # 10 %
    assert by_indicator["liquid_savings"].measure == 3.0 and by_indicator["liquid_savings"].score == 75
    assert by_indicator["manageable_debt"].measure == 0.2 and by_indicator["manageable_debt"].score == 75
    assert by_indicator["pay_bills_on_time"].score == 100
    assert score.score == round((88 + 75 + 75 + 75 + 100) / 5) and score.band == "healthy"


def test_late_and_overdraft_fees_cost_paying_bills_on_time() -> None:
    as_of = date(2026, 1, 10)
    months = _months(300_000, 200_000, 30_000)
    one = health_score(months, as_of, Observed(penalty_fee_months=frozenset({date(2025, 3, 1)})))
    four = health_score(months, as_of, Observed(penalty_fee_months=frozenset(date(2025, m, 1) for m in (1, 4, 7, 9))))
    by = lambda score: next(c for c in score.components if c.indicator == "pay_bills_on_time")  # noqa: E731
    assert (
        by(one).score == 75
        and by(four).score == 25
        and by(one).reason == "1 of 12 months had an overdraft or late-payment fee."
    )
    # Without the provider's fee detail, any bank fee in a month stands in for a penalty.
    fees = health_score(_months(300_000, 200_000, 30_000, fees=500), as_of)
    assert by(fees).score == 0
    assert is_penalty_fee("BANK_FEES_OVERDRAFT_FEES") and is_penalty_fee(None, "UNPAID ITEM CHARGE")
    assert is_penalty_fee("BANK_FEES_OTHER_BANK_FEES", "LATE PAYMENT FEE")
    assert not is_penalty_fee("BANK_FEES_ATM_FEES", "ATM FEE") and not is_penalty_fee(None, "")


def test_only_complete_months_before_as_of_are_read_and_too_little_gives_no_score() -> None:
    months = monthly_figures(
        [Entry(date(2026, 3, 2), 200_000, C.INCOME_SALARY), Entry(date(2026, 3, 5), -150_000, C.GROCERIES)],
        coverage=(date(2026, 3, 1), date(2026, 3, 20)),
    )
    score = health_score(months, date(2026, 3, 20))  # March is neither complete nor before March
    assert score.score is None and score.band is None and score.months_read == 0
    assert not any(c.observed for c in score.components)


def test_debt_repayments_are_unseen_spending_only_without_a_linked_card() -> None:
    entries = [
        Entry(date(2026, 1, 5), 300_000, C.INCOME_SALARY),
        Entry(date(2026, 1, 25), -50_000, C.DEBT_REPAYMENT),
        Entry(date(2026, 1, 25), 50_000, C.DEBT_REPAYMENT, account_kind="credit"),  # the card's side
    ]
    months = monthly_figures(entries)
    assert observations(entries, months) == Observed(50_000, 0, None, None)
    assert observations(entries[:2], months).unseen_spending_minor == 50_000


def test_bands() -> None:
    assert (band(100), band(80), band(79), band(40), band(39), band(0)) == (
        "healthy",
        "healthy",
        "coping",
        "coping",
        "vulnerable",
        "vulnerable",
    )
