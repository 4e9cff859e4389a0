"""The categoriser's training data: statement lines made from the merchants the project ships
(`data/merchants.csv`, and the sandbox banks' merchants, which the training command adds), in
each country's statement style.

Deterministic for a seed, so `python -m badges.cli.train_categoriser` gives the same model twice.
Every line carries its merchant as a group, so evaluation can hold out whole merchants.
"""

from __future__ import annotations

import csv
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from badges.domain.categories import SpendingCategory

C = SpendingCategory


@dataclass(frozen=True, slots=True)
class Counterparty:
    name: str
    category: SpendingCategory
    country: str  # UK or US
    low: float
    high: float
    pretty: str | None = None  # the provider's cleaned merchant name, where it gives one
    money_in: bool | None = None  # None: as the category usually goes


@dataclass(frozen=True, slots=True)
class Example:
    description: str
    merchant_name: str | None
    amount_minor: int  # signed: positive money in
    category: SpendingCategory
    group: str  # the merchant: held out whole in evaluation


def shipped_counterparties() -> list[Counterparty]:
    text = resources.files("badges.insights").joinpath("data/merchants.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    parties = []
    for row in rows:
        countries = ("UK", "US") if row["country"] == "both" else (row["country"],)
        back = row["category"] == "savings_back"
        category = C.SAVINGS if back else C(row["category"])
        for country in countries:
            parties.append(
                Counterparty(row["name"], category, country, float(row["low"]), float(row["high"]), money_in=back)
            )
    return parties


# How a counterparty's line reads, by the kind of payment its category usually is.
CARD = {
    "UK": ("{NAME}", "{NAME} {TOWN} GB", "CARD PAYMENT TO {NAME} ON {DD} {MON}", "CONTACTLESS {NAME} {TOWN}",
           "{NAME}*{REF}", "VIS {NAME} {TOWN}", "{NAME} {N} {TOWN}"),
    "US": ("{NAME} #{N} {CITY} {ST}", "POS PURCHASE {NAME} {CITY} {ST}", "CHECKCARD {MMDD} {NAME} {CITY} {ST}",
           "SQ *{NAME}", "{NAME} {N}", "PURCHASE AUTHORIZED ON {MM}/{DD} {NAME} {CITY} {ST}", "{NAME}"),
}  # fmt: skip
DEBIT = {
    "UK": ("DD {NAME} {REF}", "DIRECT DEBIT {NAME}", "{NAME} {REF} DDR", "SO {NAME} {REF}", "{NAME}"),
    "US": ("{NAME} DES:PAYMENT ID:{N}", "ACH DEBIT {NAME}", "{NAME} AUTOPAY {N}", "{NAME} WEB PMT {N}", "{NAME}"),
}
CREDIT = {
    "UK": ("BGC {NAME}", "FP {NAME} {REF}", "BANK GIRO CREDIT {NAME}", "{NAME} {REF}", "{NAME}"),
    "US": ("{NAME} PAYROLL PPD ID: {N}", "{NAME} DIRECT DEP {N}", "ACH CREDIT {NAME}", "{NAME} DIR DEP", "{NAME}"),
}
TRANSFER = {
    "UK": ("{NAME} {MASK}", "FP {NAME} {MASK}", "SO {NAME}", "{NAME}"),
    "US": ("{NAME} {MASK}", "ONLINE TRANSFER {NAME} XXXXXX{MASK}", "{NAME} REF #{N}", "{NAME}"),
}
CARD_CATEGORIES = {
    C.GROCERIES, C.EATING_OUT, C.FAST_FOOD, C.GAMBLING, C.TRANSPORT, C.SHOPPING, C.ENTERTAINMENT, C.OTHER, C.CASH,
    C.FEES,
}  # fmt: skip
TOWNS = ("LONDON", "LEEDS", "MANCHESTER", "BRISTOL", "GLASGOW", "CARDIFF", "BIRMINGHAM", "YORK", "NOTTINGHAM")
CITIES = (("NEW YORK", "NY"), ("CHICAGO", "IL"), ("AUSTIN", "TX"), ("SEATTLE", "WA"), ("DENVER", "CO"),
          ("ATLANTA", "GA"), ("BOSTON", "MA"), ("PHOENIX", "AZ"), ("MIAMI", "FL"))  # fmt: skip
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def statement_line(party: Counterparty, rng: random.Random) -> Example:
    money_in = party.money_in
    if money_in is None:
        money_in = party.category in (C.INCOME_SALARY, C.INCOME_BENEFITS, C.INCOME_OTHER) or (
            party.category is C.TRANSFER and rng.random() < 0.5
        )
    if party.category in CARD_CATEGORIES:
        styles = CARD
    elif money_in:
        styles = CREDIT
    elif party.category in (C.SAVINGS, C.TRANSFER):
        styles = TRANSFER
    else:
        styles = DEBIT
    name = party.name
    if rng.random() < 0.25 and len(name) > 12:  # terminals truncate the merchant's name
        name = name[: rng.randint(10, len(name) - 1)]
    city, state = rng.choice(CITIES)
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    line = rng.choice(styles[party.country]).format(
        NAME=name,
        TOWN=rng.choice(TOWNS),
        CITY=city,
        ST=state,
        DD=f"{day:02d}",
        MM=f"{month:02d}",
        MMDD=f"{month:02d}{day:02d}",
        MON=MONTHS[month - 1],
        REF=f"{rng.randint(10_000, 99_999_999)}",
        N=f"{rng.randint(1, 99_999)}",
        MASK=f"{rng.randint(0, 9999):04d}",
    )
    amount = math.exp(rng.uniform(math.log(party.low), math.log(max(party.high, party.low))))
    minor = round(amount * 100)
    pretty = party.pretty or party.name.title()
    merchant_name = pretty if rng.random() < (0.7 if styles is CARD else 0.3) else None
    return Example(line, merchant_name, minor if money_in else -minor, party.category, party.name)


def corpus(parties: Sequence[Counterparty], seed: int = 7, lines_per_party: int = 60) -> list[Example]:
    rng = random.Random(seed)
    return [statement_line(party, rng) for party in parties for _ in range(lines_per_party)]


@dataclass(frozen=True, slots=True)
class MemberCorrection:
    """One member's word on a merchant: its label (`merchant_label`), the category they chose, and
    the amounts of their transactions from it."""

    member: str
    label: str
    category: SpendingCategory
    amounts_minor: Sequence[int]


# A merchant enters training from members' corrections only once this many members corrected it:
# then it is a merchant many people use, not a line that could name one person.
MIN_CORRECTING_MEMBERS = 5


def corrected_counterparties(
    corrections: Sequence[MemberCorrection], min_members: int = MIN_CORRECTING_MEMBERS
) -> list[Counterparty]:
    """Members' corrections as counterparties for `corpus`: one per merchant that at least
    `min_members` members corrected, in the category most of them chose (more than half, else it
    is left out), with the range and direction of their amounts. Only the label, the category and
    the amounts are used; `corpus` writes the statement lines around the label."""
    by_label: dict[str, list[MemberCorrection]] = defaultdict(list)
    for correction in corrections:
        by_label[correction.label].append(correction)
    parties = []
    for label, said in sorted(by_label.items()):
        members = {c.member for c in said}
        if len(members) < min_members:
            continue
        votes: dict[SpendingCategory, set[str]] = defaultdict(set)
        for correction in said:
            votes[correction.category].add(correction.member)
        category, voters = max(votes.items(), key=lambda vote: (len(vote[1]), vote[0].value))
        if 2 * len(voters) <= len(members):
            continue
        amounts = [a for c in said if c.category is category for a in c.amounts_minor if a]
        if not amounts:
            continue
        majors = sorted(abs(a) / 100 for a in amounts)
        money_in = 2 * sum(a > 0 for a in amounts) > len(amounts)
        low, high = max(majors[0], 1.0), max(majors[-1], 1.0)
        parties += [
            Counterparty(label.upper(), category, country, low, high, money_in=money_in) for country in ("UK", "US")
        ]
    return parties
