"""TrueLayer's personas and the histories generated for them: a current and a savings account, up
to 24 months of salary, rent, bills, groceries, fast food, gambling and savings transfers, in pounds
and in TrueLayer's shapes. Chosen by the `user` given on authorisation: `john` (steady), `saver`,
`spender`, `gambler`, `fastfood`. Reproducible: the same user, seed and day give the same history.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any

from badges.banking.sandbox.truelayer.institutions import PROVIDER

DAYS_PER_MONTH = 30.4


@dataclass(frozen=True)
class Habits:
    """How a persona lives: pay, rent and savings a month (pounds), card spending visits a week."""

    salary: int
    rent: int
    savings: int
    groceries: float
    fast_food: float
    gambling: float


PERSONAS: dict[str, Habits] = {
    "john": Habits(salary=2600, rent=950, savings=200, groceries=2, fast_food=1, gambling=0),
    "saver": Habits(salary=2900, rent=900, savings=700, groceries=2, fast_food=0.3, gambling=0),
    "spender": Habits(salary=2400, rent=1000, savings=0, groceries=3, fast_food=3, gambling=0.3),
    "gambler": Habits(salary=2300, rent=850, savings=0, groceries=2, fast_food=2, gambling=4),
    "fastfood": Habits(salary=2200, rent=800, savings=50, groceries=1, fast_food=6, gambling=0),
}


@dataclass(frozen=True)
class Spending:
    """A kind of card spending: where (descriptor pattern, merchant), how much, how TrueLayer
    classifies it."""

    habit: str  # the Habits field giving visits a week
    merchants: tuple[tuple[str, str], ...]
    low: float
    high: float
    classification: tuple[str, str]


SPENDING = (
    Spending(
        "groceries",
        (("TESCO STORES {n}", "Tesco"), ("SAINSBURYS S/MKTS {n}", "Sainsbury's"), ("LIDL GB {n}", "Lidl")),
        12,
        95,
        ("Food & Dining", "Groceries"),
    ),
    Spending(
        "fast_food",
        (("MCDONALDS {n}", "McDonald's"), ("KFC {n}", "KFC"), ("GREGGS {n}", "Greggs"), ("DELIVEROO {n}", "Deliveroo")),
        4,
        28,
        ("Food & Dining", "Fast Food"),
    ),
    Spending(
        "gambling",
        (("BET365 {n}", "Bet365"), ("WILLIAM HILL {n}", "William Hill"), ("PADDY POWER {n}", "Paddy Power")),
        5,
        60,
        ("Entertainment", "Gambling"),
    ),
)
# (descriptor, merchant, day of month, low, high): monthly direct debits.
BILLS = (
    ("BRITISH GAS {n}", "British Gas", 14, 60, 140),
    ("THAMES WATER {n}", "Thames Water", 9, 25, 45),
    ("EE LIMITED {n}", "EE", 20, 25, 40),
)


@dataclass
class Posting:
    """One transaction as the sandbox bank holds it; rendered in TrueLayer's shape."""

    transaction_id: str
    account_id: str
    timestamp: datetime
    description: str
    amount: Decimal  # TrueLayer's sign: negative for money out
    transaction_category: str
    classification: list[str]
    merchant_name: str | None = None
    provider_category: str = "POS"

    def render(self, currency: str, running_balance: Decimal | None) -> dict[str, Any]:
        item: dict[str, Any] = {
            "transaction_id": self.transaction_id,
            "normalised_provider_transaction_id": f"txn-{self.transaction_id[:20]}",
            "provider_transaction_id": self.transaction_id[::-1][:24],
            "timestamp": self.timestamp.isoformat(),
            "description": self.description,
            "amount": float(self.amount),
            "currency": currency,
            "transaction_type": "DEBIT" if self.amount < 0 else "CREDIT",
            "transaction_category": self.transaction_category,
            "transaction_classification": self.classification,
            "meta": {
                "provider_category": self.provider_category,
                "provider_transaction_category": self.provider_category,
            },
        }
        if self.merchant_name:
            item["merchant_name"] = self.merchant_name
        if running_balance is not None:
            item["running_balance"] = {"amount": float(running_balance), "currency": currency}
        return item


@dataclass(frozen=True)
class History:
    accounts: list[dict[str, Any]]  # TrueLayer account resources: current, then savings
    opening_balances: dict[str, Decimal]
    postings: list[Posting]


def hex_id(rng: Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def generate(user: str, seed: str, today: date, months: int) -> History:
    """A persona's accounts, opening balances and booked history (oldest first) through
    yesterday: the same for the same user, seed and day."""
    habits = PERSONAS.get(user, PERSONAS["john"])
    rng = Random(hashlib.sha256(f"{user}|{seed}".encode()).digest())
    current_id, savings_id = hex_id(rng), hex_id(rng)
    sort_code = f"{rng.randrange(10, 99)}-{rng.randrange(10, 99)}-{rng.randrange(10, 99)}"

    def account(account_id: str, kind: str, name: str) -> dict[str, Any]:
        number = f"{rng.randrange(10**7, 10**8)}"
        return {
            "update_timestamp": datetime.combine(today, datetime.min.time(), UTC).isoformat(),
            "account_id": account_id,
            "account_type": kind,
            "display_name": name,
            "currency": "GBP",
            "account_number": {
                "iban": f"GB{rng.randrange(10, 99)}MOCK{sort_code.replace('-', '')}{number}",
                "number": number,
                "sort_code": sort_code,
                "swift_bic": "MOCKGB21",
            },
            "provider": PROVIDER,
        }

    accounts = [account(current_id, "TRANSACTION", "Current Account"), account(savings_id, "SAVINGS", "Easy Saver")]
    openings = {current_id: Decimal(rng.randrange(300, 1500)), savings_id: Decimal(rng.randrange(0, 3000))}
    postings: list[Posting] = []

    def post(
        day: date,
        description: str,
        amount: float,
        category: str,
        classification: tuple[str, ...] = (),
        merchant: str | None = None,
        code: str = "POS",
        account_id: str = current_id,
    ) -> None:
        moment = datetime.combine(day, datetime.min.time(), UTC) + timedelta(minutes=rng.randrange(6 * 60, 22 * 60))
        postings.append(
            Posting(
                transaction_id=hex_id(rng),
                account_id=account_id,
                timestamp=moment,
                description=description.format(n=rng.randrange(1000, 9999)),
                amount=Decimal(str(amount)).quantize(Decimal("0.01")),
                transaction_category=category,
                classification=list(classification),
                merchant_name=merchant,
                provider_category=code,
            )
        )

    def visits(per_week: float) -> int:
        """How many visits on one day, for a weekly rate."""
        chance = per_week / 7
        return int(chance) + (1 if rng.random() < chance - int(chance) else 0)

    day = today - timedelta(days=round(months * DAYS_PER_MONTH))
    while day < today:  # through yesterday: nothing is dated later than now
        if day.day == 25:
            post(day, "ACME LTD SALARY", habits.salary + rng.randrange(-50, 50), "CREDIT", (), "Acme Ltd", "BGC")
        if day.day == 1:
            post(day, "OAKWOOD LETTINGS RENT", -habits.rent, "STANDING_ORDER", ("Home", "Mortgage & Rent"), code="SO")
        if day.day == 26 and habits.savings:
            post(day, "TO EASY SAVER", -habits.savings, "TRANSFER", code="TFR")
            post(day, "FROM CURRENT ACCOUNT", habits.savings, "TRANSFER", code="TFR", account_id=savings_id)
        for pattern, name, bill_day, low, high in BILLS:
            if day.day == bill_day:
                post(
                    day,
                    pattern,
                    -round(rng.uniform(low, high), 2),
                    "DIRECT_DEBIT",
                    ("Bills and Utilities",),
                    name,
                    "DD",
                )
        for kind in SPENDING:
            for _ in range(visits(getattr(habits, kind.habit))):
                pattern, name = rng.choice(kind.merchants)
                post(day, pattern, -round(rng.uniform(kind.low, kind.high), 2), "PURCHASE", kind.classification, name)
                if kind.habit == "gambling" and rng.random() < 0.15:  # an occasional win
                    post(day, pattern, round(rng.uniform(10, 150), 2), "CREDIT", kind.classification, name)
        if day.day == 28 and day.month % 3 == 0:
            post(day, "INTEREST PAID", round(rng.uniform(0.5, 8), 2), "INTEREST", code="INT", account_id=savings_id)
        day += timedelta(days=1)
    postings.sort(key=lambda item: item.timestamp)
    return History(accounts, openings, postings)
