"""The sandbox's people: each persona is the set of habits its generated bank history follows.

Chosen at link time: at Plaid by `options.override_username` (Plaid's sandbox convention), at
TrueLayer by the `user` given on authorisation (`truelayer/history.py` maps its names). Rates are
per month unless named otherwise; amounts are US dollars, scaled by a market in another currency
(`catalogue.Market.scale`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

IncomeKind = Literal["monthly", "biweekly", "irregular"]


@dataclass(frozen=True)
class Habits:
    """What one person does with money in a month."""

    income: IncomeKind
    net_pay: float  # per month (for irregular income: the long-run average)
    rent: float
    savings_rate: float  # share of each pay moved to the savings account
    fast_food: float  # visits per month
    groceries: float  # shops per month
    eating_out: float  # coffee and restaurants per month
    gambling: float  # bets per month
    shopping: float  # discretionary card purchases per month
    subscriptions: int  # monthly subscriptions kept
    card_bill: float  # typical monthly credit-card payment


@dataclass(frozen=True)
class Persona:
    """Habits, and (for the improver) the better habits of the last quarter."""

    username: str
    habits: Habits
    last_quarter: Habits | None = None

    def habits_on(self, days_before_today: int) -> Habits:
        if self.last_quarter is not None and days_before_today < 91:
            return self.last_quarter
        return self.habits


_GOOD = Habits("biweekly", 4200, 1400, 0.10, 4, 6, 6, 0, 5, 3, 450)
_IMPROVER = Habits("monthly", 4000, 1300, 0.02, 22, 5, 10, 5, 12, 5, 800)

PERSONAS: dict[str, Persona] = {
    persona.username: persona
    for persona in (
        Persona("user_good", _GOOD),
        Persona("user_saver", Habits("monthly", 4800, 1300, 0.25, 1, 7, 3, 0, 2, 2, 250)),
        Persona("user_spender", Habits("biweekly", 4500, 1700, 0.0, 12, 4, 18, 0, 18, 6, 1400)),
        Persona("user_gambler", Habits("monthly", 3800, 1200, 0.02, 8, 5, 6, 14, 5, 3, 600)),
        Persona("user_fastfood", Habits("monthly", 3500, 1100, 0.05, 32, 2, 4, 0, 4, 3, 400)),
        Persona(
            "user_improver",
            _IMPROVER,
            last_quarter=replace(_IMPROVER, savings_rate=0.15, fast_food=4, eating_out=5, gambling=0, shopping=4),
        ),
        Persona("user_irregular_income", Habits("irregular", 3300, 1100, 0.05, 6, 5, 5, 0, 4, 2, 350)),
    )
}
DEFAULT_USERNAME = "user_good"
