"""Yodlee's users are the shared personas, set in the United States (Yodlee's sandbox is): a
user's history is the shared generator's (`sandbox.history`, market `catalogue.US`) rendered by `wire`.

Chosen on the FastLink page by persona name (`user_good`, `user_saver`, `user_spender`,
`user_gambler`, `user_fastfood`, `user_improver`, `user_irregular_income`); any other name is
`user_good`'s persona with a history of its own. Reproducible: the same user, seed and day give
the same history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from badges.banking.sandbox import history
from badges.banking.sandbox.catalogue import US
from badges.banking.sandbox.personas import DEFAULT_USERNAME, PERSONAS
from badges.banking.sandbox.yodlee import wire
from badges.banking.sandbox.yodlee.wire import Entry


@dataclass(frozen=True)
class History:
    accounts: list[dict[str, Any]]  # Yodlee account resources: checking, then savings
    opening_balances: dict[int, Decimal]
    entries: list[Entry]  # oldest first, pending ones included


def generate(user: str, seed: str, today: date, months: int, provider_account_id: int) -> History:
    """A user's accounts, opening balances and history through yesterday: the same for the same
    user, seed and day."""
    persona = PERSONAS.get(user) or PERSONAS[DEFAULT_USERNAME]
    one_day_less = months - 1 / history.DAYS_PER_MONTH
    shared = history.generate(persona, f"{user}|{seed}", today - timedelta(days=1), one_day_less, US)
    accounts = wire.accounts(shared.checking, shared.savings, provider_account_id, shared.currency)
    openings = {
        resource["id"]: Decimal(str(account.opening_balance))
        for resource, account in zip(accounts, shared.accounts, strict=True)
    }
    entries = sorted((wire.entry(t) for t in shared.transactions), key=lambda e: e.day)
    return History(accounts, openings, entries)
