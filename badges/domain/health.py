"""A financial health score 0-100, its components and its band, modelled on the FinHealth Score's
eight indicators as far as bank transactions show them. Pure: months and balances are passed in.

The FinHealth Score (Financial Health Network) scores eight survey answers 0-100 each (five answers
a question: 0, 25, 50, 75, 100), averages them, and bands the average: healthy 80-100, coping
40-79, vulnerable 0-39. Here each indicator bank data can observe is measured from the member's
complete months (the last 12 before `as_of`) and mapped onto the same 0-100 scale, between the
figures that stand for the survey's five answers, 0 / 25 / 50 / 75 / 100 (linear in between):

- spend less than income: (income - outgoings) / income, where outgoings are spending plus
  repayments of debts whose spending the figures do not see: -15 % / -5 % / 0 / +5 % / +15 %;
- pay bills on time: months with an overdraft, late-payment, returned-payment or interest charge:
  more than half / up to half / up to a quarter / one / none;
- liquid savings (only when balances are given): easy-access balances over median monthly
  outgoings: 0 / 0.5 / 1 / 3 / 6 months;
- long-term savings: the savings rate over the months (money moved to savings and investments
  and kept): 0 / 2 % / 5 % / 10 % / 15 %;
- manageable debt: debt repayments over income: 50 % / 40 % / 30 % / 20 % / 10 %.

Three indicators cannot be seen in transactions: a prime **credit score** (held by credit bureaux),
**appropriate insurance** (premiums show as bills, but not what they cover or whether it is enough)
and **plans ahead** (an attitude, not a payment). They are left out, not guessed: their components
say `observed: False` with the reason, and the observed indicators' weights are renormalised to
sum to 1 (equal weights among those observed, as FinHealth weights all eight equally). With fewer
than two indicators observed there is no score.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from badges.domain.categories import SpendingCategory
from badges.domain.figures import Entry, MonthFigures, month_of

Band = Literal["healthy", "coping", "vulnerable"]
Indicator = Literal[
    "spend_less_than_income",
    "pay_bills_on_time",
    "liquid_savings",
    "long_term_savings",
    "manageable_debt",
    "credit_score",
    "insurance",
    "plans_ahead",
]
MONTHS_READ = 12
HEALTHY, COPING = 80, 40
MIN_OBSERVED = 2

# Where each measure stands for the survey's five answers (0, 25, 50, 75, 100).
SPEND_MARGIN = (-0.15, -0.05, 0.0, 0.05, 0.15)
MONTHS_OF_COVER = (0.0, 0.5, 1.0, 3.0, 6.0)
SAVINGS_RATE = (0.0, 0.02, 0.05, 0.10, 0.15)
DEBT_TO_INCOME = (0.50, 0.40, 0.30, 0.20, 0.10)  # falling: less debt scores more

# Plaid's `personal_finance_category.detailed` names of fees that mean a bill or a balance was not
# met; other bank fees (ATM, foreign transaction) say nothing about paying on time.
PENALTY_FEE_CATEGORIES = frozenset(
    {
        "BANK_FEES_OVERDRAFT_FEES",
        "BANK_FEES_INSUFFICIENT_FUNDS",
        "BANK_FEES_LATE_FEES",
        "BANK_FEES_INTEREST_CHARGE",
    }
)
_PENALTY_WORDS = re.compile(
    r"overdraft|overdrawn|late (payment )?fee|late charge|unpaid item|returned (item|payment)|"
    r"insufficient funds|\bnsf\b|unarranged|interest charge",
    re.IGNORECASE,
)

LABELS: dict[Indicator, str] = {
    "spend_less_than_income": "Spend less than income",
    "pay_bills_on_time": "Pay bills on time",
    "liquid_savings": "Sufficient liquid savings",
    "long_term_savings": "Sufficient long-term savings",
    "manageable_debt": "Manageable debt",
    "credit_score": "Prime credit score",
    "insurance": "Appropriate insurance",
    "plans_ahead": "Plans ahead",
}
UNOBSERVABLE: dict[Indicator, str] = {
    "credit_score": "Credit scores are held by credit reference agencies, not shown in bank transactions.",
    "insurance": "Premiums show as bills, but not what a policy covers or whether it is enough.",
    "plans_ahead": "Planning ahead is a habit of mind that payments do not show.",
}


@dataclass(frozen=True)
class Observed:
    """What the score reads besides the monthly figures, over the same months; None where the
    bank data does not show it (see `observations` to build it from entries)."""

    debt_repayments_minor: int | None = None  # loan and card repayments
    unseen_spending_minor: int = 0  # repayments for spending on cards the figures do not see
    penalty_fee_months: frozenset[date] | None = None  # first days of months with a penalty fee
    liquid_savings_minor: int | None = None  # easy-access savings and current balances in credit, now


@dataclass(frozen=True)
class Component:
    indicator: Indicator
    label: str
    observed: bool
    score: int | None  # 0..100, None when not observed
    weight: float  # its share of the total; 0 when not observed
    measure: float | None  # the figure read (a margin, months of cover, a rate, a ratio)
    reason: str


@dataclass(frozen=True)
class HealthScore:
    score: int | None  # None with fewer than two indicators observed
    band: Band | None
    components: tuple[Component, ...]
    months_read: int


def band(score: int) -> Band:
    if score >= HEALTHY:
        return "healthy"
    return "coping" if score >= COPING else "vulnerable"


def is_penalty_fee(detailed_category: str | None, description: str = "") -> bool:
    """A fee that says a bill or balance was not met: by the provider's category, or its words."""
    return detailed_category in PENALTY_FEE_CATEGORIES or bool(_PENALTY_WORDS.search(description))


def observations(
    entries: Iterable[Entry],
    months: Sequence[MonthFigures],
    *,
    penalty_fee_days: Iterable[date] | None = None,
    liquid_savings_minor: int | None = None,
) -> Observed:
    """`Observed` over the months scored: debt repayments from current accounts, and, when no
    credit-card account is linked, those repayments as the card spending figures cannot see.
    `penalty_fee_days` are the days of fees `is_penalty_fee` recognised (None: not known)."""
    scored = {figure.month for figure in months}
    repayments = 0
    card_linked = False
    for entry in entries:
        if entry.account_kind == "credit":
            card_linked = True
        if (
            entry.category is SpendingCategory.DEBT_REPAYMENT
            and entry.account_kind == "current"
            and month_of(entry.day) in scored
        ):
            repayments -= entry.amount_minor
    fee_months = None
    if penalty_fee_days is not None:
        fee_months = frozenset(month_of(day) for day in penalty_fee_days if month_of(day) in scored)
    return Observed(
        debt_repayments_minor=max(0, repayments),
        unseen_spending_minor=0 if card_linked else max(0, repayments),
        penalty_fee_months=fee_months,
        liquid_savings_minor=liquid_savings_minor,
    )


def scored_months(months: Sequence[MonthFigures], as_of: date) -> list[MonthFigures]:
    """The complete months before `as_of`'s month, the last 12."""
    current = month_of(as_of)
    return [figure for figure in months if figure.complete and figure.month < current][-MONTHS_READ:]


def health_score(months: Sequence[MonthFigures], as_of: date, observed: Observed | None = None) -> HealthScore:
    """The score from the last 12 complete months before `as_of`. `observed` must be for those same
    months (`observations(entries, scored_months(months, as_of), ...)`)."""
    read = scored_months(months, as_of)
    observed = observed or Observed()
    income = sum(m.income_minor for m in read)
    measured: list[tuple[Indicator, float | None, int | None, str]] = [
        _spend_less_than_income(read, income, observed),
        _pay_bills_on_time(read, observed),
        _liquid_savings(read, observed),
        _long_term_savings(read, income),
        _manageable_debt(income, observed),
    ]
    seen = [item for item in measured if item[2] is not None]
    weight = 1 / len(seen) if len(seen) >= MIN_OBSERVED else 0.0
    components = [
        Component(
            indicator,
            LABELS[indicator],
            score is not None,
            score,
            weight if score is not None else 0.0,
            measure,
            reason,
        )
        for indicator, measure, score, reason in measured
    ]
    components += [
        Component(indicator, LABELS[indicator], False, None, 0.0, None, reason)
        for indicator, reason in UNOBSERVABLE.items()
    ]
    if len(seen) < MIN_OBSERVED:
        return HealthScore(None, None, tuple(components), len(read))
    total = round(sum(score * weight for _, _, score, _ in seen if score is not None))
    return HealthScore(total, band(total), tuple(components), len(read))


def _spend_less_than_income(
    read: Sequence[MonthFigures], income: int, observed: Observed
) -> tuple[Indicator, float | None, int | None, str]:
    if income <= 0:
        return "spend_less_than_income", None, None, "No income seen in a complete month yet."
    outgoings = sum(m.spending_minor for m in read) + observed.unseen_spending_minor
    margin = (income - outgoings) / income
    words = "less" if margin >= 0 else "more"
    reason = f"You spent {abs(margin):.0%} {words} than you earned over {len(read)} months."
    return "spend_less_than_income", round(margin, 4), _scale(margin, SPEND_MARGIN), reason


def _pay_bills_on_time(
    read: Sequence[MonthFigures], observed: Observed
) -> tuple[Indicator, float | None, int | None, str]:
    if not read:
        return "pay_bills_on_time", None, None, "No complete month seen yet."
    if observed.penalty_fee_months is not None:
        months_with = len(observed.penalty_fee_months)
        what = "an overdraft or late-payment fee"
    else:  # the provider did not say which fees: any bank fee stands in, a harsher proxy
        months_with = sum(m.fees_minor > 0 for m in read)
        what = "a bank fee"
    share = months_with / len(read)
    if months_with == 0:
        score = 100
    elif months_with == 1:
        score = 75
    else:
        score = 50 if share <= 0.25 else 25 if share <= 0.5 else 0
    reason = f"{months_with} of {len(read)} months had {what}."
    return "pay_bills_on_time", round(share, 4), score, reason


def _liquid_savings(
    read: Sequence[MonthFigures], observed: Observed
) -> tuple[Indicator, float | None, int | None, str]:
    if observed.liquid_savings_minor is None:
        return "liquid_savings", None, None, "No account balances yet."
    monthly = statistics.median(m.spending_minor for m in read) if read else 0
    monthly += observed.unseen_spending_minor / len(read) if read else 0
    if monthly <= 0:
        return "liquid_savings", None, None, "No spending seen in a complete month yet."
    cover = max(0, observed.liquid_savings_minor) / monthly
    reason = f"Your easy-access money would cover {cover:.1f} months of your usual spending."
    return "liquid_savings", round(cover, 2), _scale(cover, MONTHS_OF_COVER), reason


def _long_term_savings(read: Sequence[MonthFigures], income: int) -> tuple[Indicator, float | None, int | None, str]:
    if income <= 0:
        return "long_term_savings", None, None, "No income seen in a complete month yet."
    rate = sum(m.savings_minor for m in read) / income
    reason = f"You put aside {max(rate, 0):.0%} of your income over {len(read)} months."
    return "long_term_savings", round(rate, 4), _scale(rate, SAVINGS_RATE), reason


def _manageable_debt(income: int, observed: Observed) -> tuple[Indicator, float | None, int | None, str]:
    if observed.debt_repayments_minor is None or income <= 0:
        return "manageable_debt", None, None, "Debt repayments or income not seen yet."
    ratio = observed.debt_repayments_minor / income
    reason = f"Debt repayments took {ratio:.0%} of your income."
    return "manageable_debt", round(ratio, 4), _scale(ratio, DEBT_TO_INCOME), reason


def _scale(value: float, points: tuple[float, float, float, float, float]) -> int:
    """0..100 by where `value` falls between the five points (rising or falling), linear between."""
    scores = (0, 25, 50, 75, 100)
    if points[0] > points[-1]:  # falling: mirror it
        return _scale(-value, tuple(-p for p in points))  # type: ignore[arg-type]
    if value <= points[0]:
        return 0
    for (low, high), (low_score, high_score) in zip(
        itertools.pairwise(points), itertools.pairwise(scores), strict=True
    ):
        if value <= high:
            return round(low_score + (high_score - low_score) * (value - low) / (high - low))
    return 100
