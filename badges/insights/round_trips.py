"""Savings round trips: money moved into savings and back out within a week is not saving, so no
savings badge counts it. Pure functions of a member's entries (no clock: the day is passed in).

**The rule.** A *deposit* is money out of a current account to savings (category `savings`; with
only the savings account linked, money into it). Within `ROUND_TRIP_DAYS` (7) it comes back:
- as money in from savings (`savings`) on a current account, of any amount, taking back the
  latest deposits first (what went in last is what comes straight back out);
- or *disguised*: money in to a current account labelled a transfer from another own account
  (`transfer`) or other income (`income_other`), of the same amount as one deposit still held
  (within `SAME_AMOUNT`, 2 %, and at least `DISGUISED_MIN_MINOR`, 100.00), unless it is the other
  side of the same sum sent from another of the member's current accounts (within `MIRROR_DAYS`).
  Money that went round in a circle is neither saving nor income, whatever its label says.
A round trip is taken out of both its legs (`without_round_trips`): no month counts it as saved,
even across a month end, nor, when it came back as income, as earned.

**For review.** A round trip the ordinary figures would have counted (`RoundTrip.for_review`:
one that came back disguised, or that crosses a month end, so one month counts the deposit and
the next the withdrawal) goes to a person, named by `RoundTrip.key`, a digest of its legs'
transaction ids, so each is reported once however often it is found again. Until a reviewer
finds it not suspicious (its key in `cleared`), it stays out of the figures; cleared, it counts
as the ordinary rules count it. A round trip labelled savings both ways inside one month already
nets to nothing in that month's figures: taken out all the same, never reported.

**Settling.** A savings badge (and a save goal's being reached, which earns *Goal getter*)
counts a deposit once it has stayed `ROUND_TRIP_DAYS` (`settled_on`, `unsettled_deposit`,
`unsettled_savings`): until then nobody can tell a deposit from the first leg of a round trip,
and an award made in between (a burst of deposits just before a window closes, taken out just
after) could not be taken back.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Literal

from badges.domain.categories import SpendingCategory
from badges.domain.figures import Entry, month_of

C = SpendingCategory
ReturnedAs = Literal["savings", "transfer", "income"]

ROUND_TRIP_DAYS = 7
SAME_AMOUNT = 0.02  # a disguised return is within this share of the deposit it matches
DISGUISED_MIN_MINOR = 10_000  # below this, a transfer in matching a deposit is a coincidence
MIRROR_DAYS = 3  # the two sides of one move between current accounts post this close together
DISGUISED_AS: dict[SpendingCategory, ReturnedAs] = {C.TRANSFER: "transfer", C.INCOME_OTHER: "income"}
HOW_IT_CAME_BACK: dict[ReturnedAs, str] = {
    "savings": "from savings",
    "transfer": "as a transfer from another of the member's accounts",
    "income": "as income",
}


@dataclass(frozen=True)
class RoundTrip:
    """Money that came back out of savings within the window: the deposits it takes back (each
    with how much of it) and the money coming back."""

    deposits: tuple[tuple[Entry, int], ...]
    withdrawal: Entry
    returned_as: ReturnedAs

    @property
    def amount_minor(self) -> int:
        return sum(amount for _, amount in self.deposits)

    @property
    def first_day(self) -> date:
        return min(deposit.day for deposit, _ in self.deposits)

    @property
    def last_day(self) -> date:
        return self.withdrawal.day

    @property
    def key(self) -> str:
        """A stable name for this round trip: the same legs give the same key at every evaluation."""
        legs = sorted(_leg_name(entry) for entry in (self.withdrawal, *(deposit for deposit, _ in self.deposits)))
        return hashlib.sha256("\x1f".join(legs).encode()).hexdigest()[:32]

    @property
    def for_review(self) -> bool:
        """Whether the ordinary figures would have counted it (so a person decides): it came back
        disguised, or it crosses a month end."""
        return self.returned_as != "savings" or month_of(self.first_day) != month_of(self.last_day)

    def summary(self) -> str:
        """What it is, in words that hold none of the member's amounts or days."""
        return (
            f"Money moved into savings came back {HOW_IT_CAME_BACK[self.returned_as]} within "
            f"{ROUND_TRIP_DAYS} days: it counts towards no savings badge unless a reviewer finds it "
            "not suspicious."
        )

    def detail(self) -> dict[str, Any]:
        """The round trip as JSON, for the reviewer: its legs, amounts and days."""
        legs = [
            {
                "leg": "deposit",
                "transactionId": deposit.transaction_id,
                "day": deposit.day.isoformat(),
                "amountMinor": amount,
            }
            for deposit, amount in self.deposits
        ]
        legs.append(
            {
                "leg": "return",
                "transactionId": self.withdrawal.transaction_id,
                "day": self.withdrawal.day.isoformat(),
                "amountMinor": self.withdrawal.amount_minor,
                "category": self.withdrawal.category.value,
            }
        )
        return {
            "firstDay": self.first_day.isoformat(),
            "lastDay": self.last_day.isoformat(),
            "amountMinor": self.amount_minor,
            "returnedAs": self.returned_as,
            "reason": self.reason(),
            "transactions": legs,
        }

    def reason(self) -> str:
        days = (self.last_day - self.first_day).days
        later = "the same day" if days == 0 else f"{days} day{'s' if days > 1 else ''} later"
        return (
            f"{self.amount_minor / 100:,.2f} went into savings on {self.first_day:%-d %b %Y} and came back "
            f"{HOW_IT_CAME_BACK[self.returned_as]} {later} ({self.last_day:%-d %b %Y})."
        )


def _leg_name(entry: Entry) -> str:
    return entry.transaction_id or f"{entry.day}|{entry.amount_minor}|{entry.account}|{entry.category.value}"


@dataclass
class _Deposit:
    entry: Entry
    left: int  # not yet taken back


def savings_round_trips(entries: Sequence[Entry], within_days: int = ROUND_TRIP_DAYS) -> list[RoundTrip]:
    """Every round trip in the entries (see the module's rule), in the order the money came back."""
    held: list[_Deposit] = []
    trips = []
    for entry, moved, returned_as in _moves(entries):
        if returned_as is None:
            held.append(_Deposit(entry, moved))
            continue
        recent = []
        for deposit in reversed(held):  # latest first
            if (entry.day - deposit.entry.day).days > within_days:
                break
            if deposit.left > 0:
                recent.append(deposit)
        taken = _take_latest(recent, moved) if returned_as == "savings" else _take_matching(recent, moved)
        if taken:
            trips.append(RoundTrip(tuple(taken), entry, returned_as))
    return trips


def _moves(entries: Sequence[Entry]) -> Iterator[tuple[Entry, int, ReturnedAs | None]]:
    """Deposits (None) and money that may be coming back (how), as seen from the current
    accounts, by day, each day's deposits first; from the savings account's own side only when no
    current account shows a move to or from savings."""
    current = [e for e in entries if e.account_kind != "savings"]
    moves: list[tuple[Entry, int, ReturnedAs | None]] = []
    if any(e.category is C.SAVINGS for e in current):
        sent = _sent_between_current_accounts(current)
        for entry in current:
            if entry.category is C.SAVINGS and entry.amount_minor != 0:
                moves.append((entry, abs(entry.amount_minor), None if entry.amount_minor < 0 else "savings"))
            elif (
                entry.category in DISGUISED_AS
                and entry.amount_minor >= DISGUISED_MIN_MINOR
                and not _from_another_current_account(entry, sent)
            ):
                moves.append((entry, entry.amount_minor, DISGUISED_AS[entry.category]))
    else:
        for entry in entries:
            if entry.category is C.SAVINGS and entry.account_kind == "savings" and entry.amount_minor != 0:
                moves.append((entry, abs(entry.amount_minor), None if entry.amount_minor > 0 else "savings"))
    moves.sort(key=lambda move: (move[0].day, move[2] is not None))
    yield from moves


def _sent_between_current_accounts(current: Sequence[Entry]) -> dict[int, list[Entry]]:
    """Transfers out of current accounts, by amount sent."""
    sent: dict[int, list[Entry]] = defaultdict(list)
    for entry in current:
        if entry.category is C.TRANSFER and entry.amount_minor < 0:
            sent[-entry.amount_minor].append(entry)
    return sent


def _from_another_current_account(entry: Entry, sent: dict[int, list[Entry]]) -> bool:
    """Whether money in is the other side of the same sum sent from another of the member's
    current accounts within `MIRROR_DAYS`: a move between them, not money back from savings."""
    return any(
        out.account != entry.account and abs((entry.day - out.day).days) <= MIRROR_DAYS
        for out in sent.get(entry.amount_minor, ())
    )


def _take_latest(recent: Sequence[_Deposit], amount: int) -> list[tuple[Entry, int]]:
    """Money back from savings takes back the latest deposits first, as much as came back."""
    taken = []
    for deposit in recent:
        if amount == 0:
            break
        part = min(amount, deposit.left)
        deposit.left -= part
        amount -= part
        taken.append((deposit.entry, part))
    return taken


def _take_matching(recent: Sequence[_Deposit], amount: int) -> list[tuple[Entry, int]]:
    """A disguised return takes back the latest deposit it matches in amount, or nothing."""
    for deposit in recent:
        if abs(deposit.left - amount) <= SAME_AMOUNT * deposit.left:
            part = min(amount, deposit.left)
            deposit.left -= part
            return [(deposit.entry, part)]
    return []


def without_round_trips(
    entries: Sequence[Entry], trips: Sequence[RoundTrip] | None = None, cleared: Collection[str] = ()
) -> list[Entry]:
    """The entries with every round trip (all of `savings_round_trips` unless `trips` are given),
    except those whose key a reviewer `cleared`, taken out of both its legs: each deposit and the
    money coming back reduced by what went straight back, so figures count only savings kept."""
    if trips is None:
        trips = savings_round_trips(entries)
    reduce: dict[int, int] = defaultdict(int)  # id(entry) -> amount to take off (towards zero)
    for trip in trips:
        if trip.key in cleared:
            continue
        for deposit, amount in trip.deposits:
            reduce[id(deposit)] += amount
            reduce[id(trip.withdrawal)] += amount
    result = []
    for entry in entries:
        cut = reduce.get(id(entry), 0)
        if not cut:
            result.append(entry)
            continue
        remaining = abs(entry.amount_minor) - cut
        if remaining > 0:
            result.append(replace(entry, amount_minor=remaining if entry.amount_minor > 0 else -remaining))
    return result


def settled_on(today: date) -> date:
    """The last day whose deposits savings badges count as of `today`."""
    return today - timedelta(days=ROUND_TRIP_DAYS)


def unsettled_deposit(entry: Entry, today: date) -> bool:
    """Whether the entry is money put into savings (from a current account, as figures count it)
    after `settled_on(today)`: saved, but not yet counted by a savings badge."""
    return (
        entry.category is C.SAVINGS
        and entry.account_kind != "savings"
        and entry.amount_minor < 0
        and settled_on(today) < entry.day <= today
    )


def unsettled_savings(entries: Sequence[Entry], today: date) -> dict[date, int]:
    """What the entries' unsettled deposits put into savings, by month."""
    by_month: dict[date, int] = defaultdict(int)
    for entry in entries:
        if unsettled_deposit(entry, today):
            by_month[month_of(entry.day)] -= entry.amount_minor
    return dict(by_month)
