"""TrueLayer's users are the shared personas, set in the UK: a user's history is the shared
generator's (`sandbox.history`, market `catalogue.UK`: pounds, UK merchants) rendered by `wire`.

Chosen by the `user` given on authorisation: `john` (the steady `user_good`), `saver`, `spender`,
`gambler`, `fastfood` (`user_saver`, …), or any shared persona by its own name (`user_improver`,
`user_irregular_income`); any other name is john's persona, with a history of its own.
Reproducible: the same user, seed and day give the same history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from badges.banking.sandbox import history
from badges.banking.sandbox.catalogue import UK
from badges.banking.sandbox.personas import PERSONAS
from badges.banking.sandbox.truelayer import wire
from badges.banking.sandbox.truelayer.wire import Posting

USERS = {
    "john": "user_good",
    "saver": "user_saver",
    "spender": "user_spender",
    "gambler": "user_gambler",
    "fastfood": "user_fastfood",
}
DEFAULT_USER = "john"


@dataclass(frozen=True)
class History:
    accounts: list[dict[str, Any]]  # TrueLayer account resources: current, then savings
    opening_balances: dict[str, Decimal]
    booked: list[Posting]  # oldest first
    pending: list[Posting]  # card payments the bank has not posted yet


def generate(user: str, seed: str, today: date, months: int) -> History:
    """A user's accounts, opening balances and history through yesterday (nothing is dated later
    than now), from the first day a history through today would have: the same for the same user,
    seed and day."""
    persona = PERSONAS[USERS.get(user, user if user in PERSONAS else USERS[DEFAULT_USER])]
    one_day_less = months - 1 / history.DAYS_PER_MONTH
    shared = history.generate(persona, f"{user}|{seed}", today - timedelta(days=1), one_day_less, UK)
    accounts = wire.accounts(shared.checking, shared.savings, shared.currency, today)
    openings = {
        resource["account_id"]: Decimal(str(account.opening_balance))
        for resource, account in zip(accounts, shared.accounts, strict=True)
    }
    booked: list[Posting] = []
    pending: list[Posting] = []
    for transaction in shared.transactions:
        (pending if transaction.pending else booked).append(wire.posting(transaction))
    booked.sort(key=lambda posting: posting.timestamp)
    return History(accounts, openings, booked, pending)
