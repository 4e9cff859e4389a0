"""Generates a persona's bank history: two accounts and 12-24 months of transactions ending today.

One generator for every provider and country: the `Market` (`catalogue.US`, the default, or
`catalogue.UK`) gives the currency, merchants and statement words; each provider renders the
records in its own shape. Reproducible: the same persona, seed, `today` and market give the same
accounts, ids and amounts. Fast enough to run lazily per item (well under a millisecond per month
of history).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, replace
from datetime import date, timedelta
from random import Random

from badges.banking.sandbox import catalogue
from badges.banking.sandbox.catalogue import US, Category, Market, Merchant
from badges.banking.sandbox.personas import Habits, Persona
from badges.banking.sandbox.records import Account, Transaction

DAYS_PER_MONTH = 30.4
_ID_ALPHABET = bytes.maketrans(b"-_", b"Ab")


@dataclass(frozen=True)
class History:
    currency: str
    checking: Account
    savings: Account
    transactions: list[Transaction]  # oldest first

    @property
    def accounts(self) -> tuple[Account, Account]:
        return self.checking, self.savings


class IdSource:
    """Plaid-looking opaque ids (base62-ish, 32 characters) from a seeded generator."""

    def __init__(self, rng: Random) -> None:
        self._rng = rng

    def next(self) -> str:
        raw = self._rng.getrandbits(192).to_bytes(24, "big")
        return base64.urlsafe_b64encode(raw).translate(_ID_ALPHABET).decode()


def generate(persona: Persona, seed: str, today: date, months: float, market: Market = US) -> History:
    return _Statement(_local(persona, market.scale), seed, today, months, market).build()


def _local(persona: Persona, scale: float) -> Persona:
    """The persona's habits in the market's money: pay, rent and card bill scaled (visit rates are not)."""
    if scale == 1:
        return persona

    def scaled(habits: Habits) -> Habits:
        return replace(
            habits, net_pay=habits.net_pay * scale, rent=habits.rent * scale, card_bill=habits.card_bill * scale
        )

    last_quarter = scaled(persona.last_quarter) if persona.last_quarter is not None else None
    return replace(persona, habits=scaled(persona.habits), last_quarter=last_quarter)


class _Statement:
    """One history being written, day by day from the oldest."""

    def __init__(self, persona: Persona, seed: str, today: date, months: float, market: Market) -> None:
        self.persona = persona
        self.market = market
        self.rng = Random(f"{persona.username}|{seed}")
        self.ids = IdSource(self.rng)
        self.today = today
        self.start = today - timedelta(days=round(months * DAYS_PER_MONTH))
        self.checking_id, self.savings_id = self.ids.next(), self.ids.next()
        self.checking_mask, self.savings_mask = f"{self.rng.randrange(10_000):04d}", f"{self.rng.randrange(10_000):04d}"
        self.transactions: list[Transaction] = []
        self.savings_balance = round(self.rng.uniform(200, 4000) * market.scale, 2)
        self.savings_opening = self.savings_balance
        self.store_numbers: dict[str, str] = {}
        pick = self.rng.sample
        pools = catalogue.discretionary(market)
        self.employer = self.rng.choice(market.employers)
        self.landlord = self.rng.choice(market.landlords)
        self.card_issuer = self.rng.choice(market.card_issuers)
        self.fast_food = pick(market.fast_food, 3)
        self.grocers = pick(market.grocers, 2)
        self.eating_out = pick(market.eating_out, 3)
        self.bookmakers = pick(market.bookmakers, 2)
        self.purchases = pools.purchases
        self.subscriptions = pick(pools.subscriptions, min(len(pools.subscriptions), persona.habits.subscriptions))
        self.gig_month_factor = 1.0
        self.earned_this_month = 0.0

    def build(self) -> History:
        paydays = self._paydays()
        day = self.start
        while day <= self.today:
            habits = self.persona.habits_on((self.today - day).days)
            if day.day == 1:
                self.gig_month_factor = self.rng.uniform(0.3, 1.7)
                if habits.income == "irregular":
                    self._save(day + timedelta(days=1), self.earned_this_month * habits.savings_rate)
                    self.earned_this_month = 0.0
                self._ach(day, self.landlord, habits.rent)
            if day in paydays:
                self._pay(day, habits, habits.net_pay * 12 / 26 if habits.income == "biweekly" else habits.net_pay)
            elif habits.income == "irregular" and self.rng.random() < 9 / DAYS_PER_MONTH:
                gig = habits.net_pay / 9 * self.gig_month_factor * self.rng.lognormvariate(0, 0.5)
                self._pay(day, habits, gig, self.rng.choice(self.market.gig_payers))
            self._monthly(day, habits)
            self._card_spend(day, habits)
            day += timedelta(days=1)
        self.transactions.sort(key=lambda transaction: transaction.date)
        return self._history()

    def _paydays(self) -> set[date]:
        income = self.persona.habits.income
        if income == "irregular":
            return set()
        if income == "biweekly":
            first = self.start + timedelta(days=(4 - self.start.weekday()) % 7 + 7 * self.rng.randrange(2))
            return {first + timedelta(days=14 * n) for n in range((self.today - first).days // 14 + 1)}
        paydays = set()
        month = self.start.replace(day=1)
        while month <= self.today:
            payday = month.replace(day=28)
            while payday.weekday() >= 5:
                payday -= timedelta(days=1)
            paydays.add(payday)
            month = (month + timedelta(days=32)).replace(day=1)
        return paydays

    def _pay(self, day: date, habits: Habits, amount: float, payer: Merchant | None = None) -> None:
        payer = payer or self.employer
        if payer is self.employer:
            amount *= self.rng.uniform(0.98, 1.03)  # overtime, deductions
        self._add(day, day, payer, -amount, self.checking_id)
        if habits.income == "irregular":
            self.earned_this_month += amount
        else:
            self._save(day + timedelta(days=1), amount * habits.savings_rate)

    def _save(self, day: date, amount: float) -> None:
        """The day after pay (monthly for irregular earners), a share goes to savings."""
        amount = round(amount, -1)
        if amount <= 0 or day > self.today:
            return
        out = _transfer(self.market.to_savings.format(savings_mask=self.savings_mask), catalogue.TO_SAVINGS)
        into = _transfer(self.market.from_checking.format(checking_mask=self.checking_mask), catalogue.FROM_CHECKING)
        self._add(day, day, out, amount, self.checking_id)
        self._add(day, day, into, -amount, self.savings_id)
        self.savings_balance += amount

    def _monthly(self, day: date, habits: Habits) -> None:
        for bill in self.market.bills:
            if day.day == bill.monthly_day:
                season = 1 + 0.3 * math.cos((day.month - 1) / 6 * math.pi)  # dearer in winter
                self._ach(day, bill, self.rng.uniform(bill.low, bill.high) * (season if bill.low != bill.high else 1))
        for subscription in self.subscriptions:
            if day.day == subscription.monthly_day:
                self._add(day, day, subscription, self._price(subscription), self.checking_id)
        if day.day == 25:
            self._ach(day, self.card_issuer, habits.card_bill * self.rng.uniform(0.7, 1.3))
        if (day + timedelta(days=1)).day == 1 and self.savings_balance > 0:
            interest = _transfer(self.market.interest, catalogue.INTEREST)
            earned = round(self.savings_balance * 0.04 / 12, 2)
            self._add(day, day, interest, -earned, self.savings_id)
            self.savings_balance += earned

    def _card_spend(self, day: date, habits: Habits) -> None:
        rng = self.rng
        for rate, merchants in (
            (habits.fast_food, self.fast_food),
            (habits.groceries, self.grocers),
            (habits.eating_out, self.eating_out),
            (habits.shopping, self.purchases),
        ):
            for _ in range(_poisson(rng, rate / DAYS_PER_MONTH)):
                merchant = rng.choice(merchants)
                self._card(day, merchant, self._price(merchant))
                if merchants is self.purchases and rng.random() < 0.06:
                    self._refund(day, merchant)
        for _ in range(_poisson(rng, habits.gambling / DAYS_PER_MONTH)):
            bookmaker = rng.choice(self.bookmakers)
            stake = self._price(bookmaker)
            self._card(day, bookmaker, stake)
            if rng.random() < 0.15:
                self._add(day, day, bookmaker, -round(stake * rng.uniform(1.5, 4), 2), self.checking_id)

    def _refund(self, day: date, merchant: Merchant) -> None:
        refunded = day + timedelta(days=self.rng.randint(3, 14))
        if refunded <= self.today:
            self._add(refunded, refunded, merchant, -self._price(merchant), self.checking_id)

    def _card(self, day: date, merchant: Merchant, amount: float) -> None:
        """A debit-card purchase: posts one to three days after authorisation, pending until then."""
        posted = day + timedelta(days=self.rng.randint(1, 3))
        self._add(posted if posted <= self.today else day, day, merchant, amount, self.checking_id, posted > self.today)

    def _ach(self, day: date, merchant: Merchant, amount: float) -> None:
        self._add(day, day, merchant, amount, self.checking_id)

    def _price(self, merchant: Merchant) -> float:
        return round(self.rng.uniform(merchant.low, merchant.high), 2)

    def _add(
        self, posted: date, authorized: date, merchant: Merchant, amount: float, account_id: str, pending: bool = False
    ) -> None:
        self.transactions.append(
            Transaction(
                transaction_id=self.ids.next(),
                account_id=account_id,
                amount=round(amount, 2),
                date=posted,
                authorized_date=authorized,
                name=merchant.descriptor.replace("{n}", self._store_number(merchant)),
                merchant_name=merchant.name,
                category=merchant.category,
                payment_channel=merchant.channel,
                pending=pending,
                mcc=merchant.mcc,
                counterparty_type=merchant.counterparty_type if merchant.name else None,
                website=merchant.website,
            )
        )

    def _store_number(self, merchant: Merchant) -> str:
        """People go back to the same branch: one number per merchant per history."""
        number = self.store_numbers.get(merchant.descriptor)
        if number is None:
            number = self.store_numbers[merchant.descriptor] = str(self.rng.randrange(1000, 99_999))
        return number

    def _history(self) -> History:
        spent = sum(t.amount for t in self.transactions if t.account_id == self.checking_id and not t.pending)
        scale = self.market.scale
        opening = max(
            round(self.rng.uniform(800, 3000) * scale, 2), round(spent + self.rng.uniform(300, 1500) * scale, 2)
        )
        checking = Account(self.checking_id, *self.market.checking, "checking", self.checking_mask, opening)
        savings = Account(self.savings_id, *self.market.savings, "savings", self.savings_mask, self.savings_opening)
        return History(
            currency=self.market.currency, checking=checking, savings=savings, transactions=self.transactions
        )


def _transfer(descriptor: str, category: Category) -> Merchant:
    """A movement between the person's own accounts (or the bank's interest): no merchant."""
    return Merchant(descriptor, None, category, None, 0, 0, channel="other")


def _poisson(rng: Random, mean: float) -> int:
    """Knuth's method: quick for the small daily means used here."""
    if mean <= 0:
        return 0
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count
