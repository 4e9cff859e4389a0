"""Sandbox personas' generated histories as the figures' entries (the sandbox's Plaid categories
mapped through `badges.domain.categories.from_provider`, amounts in minor units, positive in), and
as the records a connection holds (categorised as the sync does: the provider's category where it
is confident, the shipped categoriser model elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

from badges.banking.sandbox import history
from badges.banking.sandbox.catalogue import US, Market
from badges.banking.sandbox.personas import PERSONAS
from badges.domain.categories import SpendingCategory, from_provider
from badges.domain.figures import Entry
from badges.domain.quality import AccountState, Record
from badges.insights.categoriser import categorise, load

TODAY = date(2026, 5, 15)


@dataclass(frozen=True)
class PersonaHistory:
    entries: tuple[Entry, ...]  # posted transactions, oldest first
    first_day: date
    savings_balance_minor: int  # the savings account's balance at the end
    current_balance_minor: int
    accounts: tuple[AccountState, AccountState]  # current, savings; balances at the end


@cache
def persona_history(username: str, today: date = TODAY, months: float = 24, market: Market = US) -> PersonaHistory:
    generated = history.generate(PERSONAS[username], seed="insights", today=today, months=months, market=market)
    kinds = {generated.checking.account_id: "current", generated.savings.account_id: "savings"}
    entries = []
    for transaction in generated.transactions:
        category = from_provider(transaction.category.detailed, transaction.category.primary, None, transaction.mcc)
        if transaction.pending:
            continue
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
    accounts = (
        AccountState(generated.checking.account_id, "current", generated.checking.name, current),
        AccountState(generated.savings.account_id, "savings", generated.savings.name, savings),
    )
    return PersonaHistory(tuple(entries), min(e.day for e in entries), savings, current, accounts)


@cache
def persona_records(username: str, today: date = TODAY, months: float = 24) -> tuple[Record, ...]:
    """The history's transactions as its connection holds them, pending ones included."""
    generated = history.generate(PERSONAS[username], seed="insights", today=today, months=months)
    lines = [
        (t.name, t.merchant_name, -round(t.amount * 100), t.category.detailed, t.category.primary, None, t.mcc)
        for t in generated.transactions
    ]
    return tuple(
        Record(t.transaction_id, t.account_id, t.date, line[2], t.name, found.category, found.confidence, t.pending)
        for t, line, found in zip(generated.transactions, lines, categorise(load(), lines), strict=True)
    )
