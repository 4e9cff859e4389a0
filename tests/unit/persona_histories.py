"""Sandbox personas' generated histories as the figures' entries: the sandbox's Plaid categories
mapped through `badges.domain.categories.from_provider`, amounts in minor units, positive in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

from badges.banking.sandbox import history
from badges.banking.sandbox.catalogue import US, Market
from badges.banking.sandbox.personas import PERSONAS
from badges.domain.categories import SpendingCategory, from_provider
from badges.domain.figures import Entry

TODAY = date(2026, 5, 15)


@dataclass(frozen=True)
class PersonaHistory:
    entries: tuple[Entry, ...]  # posted transactions, oldest first
    first_day: date
    savings_balance_minor: int  # the savings account's balance at the end
    current_balance_minor: int


@cache
def persona_history(username: str, today: date = TODAY, months: float = 24, market: Market = US) -> PersonaHistory:
    generated = history.generate(PERSONAS[username], seed="insights", today=today, months=months, market=market)
    kinds = {generated.checking.account_id: "current", generated.savings.account_id: "savings"}
    entries = []
    for transaction in generated.transactions:
        if transaction.pending:
            continue
        category = from_provider(transaction.category.detailed, transaction.category.primary, None, transaction.mcc)
        entries.append(
            Entry(
                day=transaction.date,
                amount_minor=-round(transaction.amount * 100),
                category=category.category if category is not None else SpendingCategory.OTHER,
                account_kind=kinds[transaction.account_id],
                merchant=transaction.merchant_name or transaction.name,
                account=transaction.account_id,
            )
        )
    savings = round(generated.savings.opening_balance * 100) + sum(
        e.amount_minor for e in entries if e.account_kind == "savings"
    )
    current = round(generated.checking.opening_balance * 100) + sum(
        e.amount_minor for e in entries if e.account_kind == "current"
    )
    return PersonaHistory(tuple(entries), min(e.day for e in entries), savings, current)
