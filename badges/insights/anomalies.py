"""What is unusual in a member's spending, judged against their own history, and money moved in
ways worth a look. Pure functions of the entries (no clock: days passed in).

**Unusual transactions.** With a long history (at least `FOREST_MIN_TRANSACTIONS` spending
transactions over `FOREST_MIN_DAYS` days before `since`) a scikit-learn `IsolationForest`, fitted
on that history with a fixed seed, judges each new transaction on four features together: its size
(log), its size against the category's own (a robust z-score), how familiar the merchant is and
how common the category is. It catches what one rule cannot (an ordinary amount in a category the
member hardly uses, at a merchant never seen), and it learns each member's own spread: a member
whose shopping ranges widely is not told about every big basket. The forest's threshold is the
score of the 1 % most isolated transactions of the member's own history. With a short history a
forest is noise, so the robust rule alone decides: the Iglewicz-Hoaglin modified z-score of the
log amount against the category's median and median absolute deviation, above 3.5. Either way a
transaction is reported only with a reason a member can read: at least `RATIO` times the
category's usual payment (and not what the member usually pays at that merchant), or a first
payment in a category that is big for the member. So the forest (or the rule) is asked only
about payments that already have such a reason, and with none among the new ones (most
evaluations) no forest is fitted: fitting is most of what an evaluation costs (bench/insights.py).

**Unusual months.** A category's spending in a month against the same category's previous up to
12 months (months without any counted as zero): the median and median absolute deviation again,
as 24 points at most are too few for a forest. A month in progress is reported as soon as its
spending so far is already unusual.

**Patterns worth a look** (found, never an automatic penalty, and not yet put to the review
queue: neither earns a badge by itself, as more income only lowers a savings rate): money sent
from an account to the member's own other account and the same amount coming back
(`own_account_round_trips`); income that is neither the salary nor usual arriving in the last
days before a badge window closes (`income_spike_before_close`). Money moved into savings and
straight back out, which would earn savings badges, is `badges/insights/round_trips.py`: taken
out of the figures and put to the review queue.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest

from badges.domain.categories import INCOME, NOT_SPENDING, SpendingCategory
from badges.domain.figures import Entry, month_of
from badges.insights.income import IncomeStream, payer_key
from badges.insights.round_trips import ROUND_TRIP_DAYS

C = SpendingCategory
Method = Literal["isolation_forest", "median_mad"]
ReviewKind = Literal["own_account_round_trip", "income_spike_before_close"]

FOREST_MIN_TRANSACTIONS = 200
FOREST_MIN_DAYS = 90
FOREST_SEED = 12
FOREST_CONTAMINATION = 0.01
# Few, small trees: an evaluation with a payment to judge fits one forest, and nearly all of its
# cost is scikit-learn's own per tree (about 1.3 ms each here, whatever the history's size). The
# members who need one set the picture's p99 in bench/insights.py: 57 ms with 16 trees, 46 ms
# with 8 (CPU time, idle machine). The verdicts are noisy either way: on 338 payments the forest
# was asked about (bench members with big payments added), 8 trees agree with a 300-tree forest
# on 73 % of them, 16 on 81 %, the robust rule alone on 71 %; and only payments already three
# times their category's usual are asked about.
FOREST_TREES = 8
FOREST_SAMPLES = 128
MAD_Z = 3.5
RATIO = 3.0  # a transaction this many times the category's usual is worth a word
MIN_CATEGORY_HISTORY = 8  # payments in a category before its usual means anything
MIN_MERCHANT_HISTORY = 2
MONTHS_BASELINE = 12
MIN_MONTHS_BASELINE = 3
MONTH_RATIO = 2.0
MONTH_FLOOR = 0.05  # and at least this share of a usual month's spending more
ROUND_TRIP_TOLERANCE = 0.02
SPIKE_DAYS = 7
SPIKE_FACTOR = 3.0
SALARY_EXPLAINS = 1.5  # a salary payment up to this many times its typical is expected
SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€"}


@dataclass(frozen=True)
class Unusual:
    kind: Literal["transaction", "month"]
    day: date  # the transaction's day, or the month's first day
    category: SpendingCategory
    merchant: str  # empty for a month
    amount_minor: int  # spent, positive
    typical_minor: int  # the member's usual payment (or month) in the category; 0 when none yet
    method: Method
    reason: str


@dataclass(frozen=True)
class ReviewItem:
    kind: ReviewKind
    first_day: date
    last_day: date
    amount_minor: int
    reason: str


def money(amount_minor: int, currency: str = "GBP") -> str:
    symbol = SYMBOLS.get(currency, f"{currency} ")
    return f"{'-' if amount_minor < 0 else ''}{symbol}{abs(amount_minor) / 100:,.2f}"


def _spending(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(
        (e for e in entries if e.amount_minor < 0 and e.category not in NOT_SPENDING and e.account_kind != "savings"),
        key=lambda e: e.day,
    )


@dataclass(frozen=True)
class _Usual:
    """A category's usual payment: the median and MAD of log amounts, and the median amount."""

    log_median: float
    log_mad: float
    median_minor: int
    count: int

    def z(self, amount_minor: int) -> float:
        spread = self.log_mad if self.log_mad > 0 else 0.05  # fixed prices: any change is news
        return 0.6745 * (math.log(amount_minor) - self.log_median) / spread


def _usual(amounts: Sequence[int]) -> _Usual:
    logs = [math.log(amount) for amount in amounts]
    middle = statistics.median(logs)
    return _Usual(
        middle, statistics.median(abs(v - middle) for v in logs), int(statistics.median(amounts)), len(amounts)
    )


def unusual_transactions(entries: Iterable[Entry], since: date, currency: str = "GBP") -> list[Unusual]:
    """Spending transactions from `since` on that are unusual for this member, with reasons."""
    spending = _spending(entries)
    history = [e for e in spending if e.day < since]
    recent = [e for e in spending if e.day >= since]
    if not history or not recent:
        return []
    by_category: dict[SpendingCategory, list[int]] = defaultdict(list)
    at_merchant: dict[str, list[int]] = defaultdict(list)
    for entry in history:
        by_category[entry.category].append(-entry.amount_minor)
        at_merchant[payer_key(entry.merchant)].append(-entry.amount_minor)
    usual = {category: _usual(amounts) for category, amounts in by_category.items()}
    months_seen = max(1, round((since - history[0].day).days / 30.44))
    long_history = len(history) >= FOREST_MIN_TRANSACTIONS and (since - history[0].day).days >= FOREST_MIN_DAYS
    method: Method = "isolation_forest" if long_history else "median_mad"
    large = _large(history)
    found: list[tuple[int, Unusual]] = []  # by the payment's place in `recent`
    sayable: list[tuple[int, Entry]] = []  # each outlier among these is reported, with why
    for position, entry in enumerate(recent):
        category_usual = usual.get(entry.category)
        if category_usual is None:
            # A first payment in a category is news when it is big for this member.
            if -entry.amount_minor >= large:
                found.append((position, _first_payment(entry, method, months_seen, currency)))
        elif _worth_a_word(entry, category_usual, at_merchant):
            sayable.append((position, entry))
    if sayable:
        # Which of them is unusual: the forest (or the robust rule) is asked only about payments
        # it could change the answer for; with none (most evaluations) it is not fitted at all.
        candidates = [entry for _, entry in sayable]
        if long_history:
            isolated = _forest_outliers(history, candidates, usual)
        else:
            isolated = [usual[e.category].z(-e.amount_minor) > MAD_Z for e in candidates]
        found += [
            (position, _bigger_than_usual(entry, usual[entry.category], method, currency))
            for (position, entry), outlier in zip(sayable, isolated, strict=True)
            if outlier
        ]
    return [unusual for _, unusual in sorted(found, key=lambda pair: pair[0])]


def _worth_a_word(entry: Entry, category_usual: _Usual, at_merchant: dict[str, list[int]]) -> bool:
    """A payment that could be reported in words a member can read: at least `RATIO` times the
    category's usual (once the category has a usual), and not what they usually pay there."""
    amount = -entry.amount_minor
    if category_usual.count < MIN_CATEGORY_HISTORY or amount / category_usual.median_minor < RATIO:
        return False
    usual_here = at_merchant.get(payer_key(entry.merchant), [])
    return len(usual_here) < MIN_MERCHANT_HISTORY or amount >= RATIO * statistics.median(usual_here)


def _first_payment(entry: Entry, method: Method, months_seen: int, currency: str) -> Unusual:
    amount = -entry.amount_minor
    name = entry.category.value.replace("_", " ")
    at = f" at {entry.merchant}" if entry.merchant else ""
    reason = f"{money(amount, currency)}{at} is your first {name} payment in {months_seen} months."
    return Unusual("transaction", entry.day, entry.category, entry.merchant, amount, 0, method, reason)


def _bigger_than_usual(entry: Entry, category_usual: _Usual, method: Method, currency: str) -> Unusual:
    amount = -entry.amount_minor
    name = entry.category.value.replace("_", " ")
    at = f" at {entry.merchant}" if entry.merchant else ""
    reason = (
        f"{money(amount, currency)}{at} is {amount / category_usual.median_minor:.1f}x your usual {name} payment "
        f"({money(category_usual.median_minor, currency)})."
    )
    usual_minor = category_usual.median_minor
    return Unusual("transaction", entry.day, entry.category, entry.merchant, amount, usual_minor, method, reason)


def _large(history: Sequence[Entry]) -> int:
    """A payment big for this member: the 90th percentile of their spending payments."""
    amounts = sorted(-e.amount_minor for e in history)
    return amounts[min(len(amounts) - 1, int(0.9 * len(amounts)))]


def _forest_outliers(
    history: Sequence[Entry], recent: Sequence[Entry], usual: dict[SpendingCategory, _Usual]
) -> list[bool]:
    categories = Counter(e.category for e in history)
    merchants = Counter(payer_key(e.merchant) for e in history)

    def features(entry: Entry) -> list[float]:
        amount = -entry.amount_minor
        category_usual = usual.get(entry.category)
        z = category_usual.z(amount) if category_usual is not None else MAD_Z * 2
        return [
            math.log(amount),
            max(-10.0, min(10.0, z)),
            math.log1p(merchants.get(payer_key(entry.merchant), 0)),
            categories.get(entry.category, 0) / len(history),
        ]

    # The threshold (the score of the history's most isolated `FOREST_CONTAMINATION`) is taken
    # here, from one scoring pass over the history and the payments judged together, rather than
    # by `contamination=`, which scores the history in `fit` and the payments again in `predict`:
    # the same verdicts, for one pass through the trees instead of two.
    forest = IsolationForest(
        n_estimators=FOREST_TREES, max_samples=FOREST_SAMPLES, contamination="auto", random_state=FOREST_SEED
    )
    trained = np.array([features(e) for e in history])
    # The inputs are ours and finite: skip the per-tree checks, which cost more than the trees.
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        forest.fit(trained)
        scores = forest.score_samples(np.vstack([trained, [features(e) for e in recent]]))
    threshold = np.percentile(scores[: len(history)], 100.0 * FOREST_CONTAMINATION)
    return [bool(score < threshold) for score in scores[len(history) :]]


def unusual_months(entries: Iterable[Entry], since: date, currency: str = "GBP") -> list[Unusual]:
    """Categories whose spending in a month from `since`'s month on is unusual against the
    previous months (the month in progress included, by its spending so far)."""
    spending = _spending(entries)
    if not spending:
        return []
    totals: dict[date, dict[SpendingCategory, int]] = defaultdict(lambda: defaultdict(int))
    for entry in spending:
        totals[month_of(entry.day)][entry.category] -= entry.amount_minor
    months = _months(spending[0].day, spending[-1].day)
    monthly_spend = [sum(totals[m].values()) for m in months]
    found = []
    for index, month in enumerate(months):
        if month < month_of(since):
            continue
        before = months[max(0, index - MONTHS_BASELINE) : index]
        if len(before) < MIN_MONTHS_BASELINE:
            continue
        floor = MONTH_FLOOR * statistics.median(monthly_spend[max(0, index - MONTHS_BASELINE) : index])
        for category, total in sorted(totals[month].items()):
            history = [totals[m].get(category, 0) for m in before]
            middle = statistics.median(history)
            spread = statistics.median(abs(v - middle) for v in history)
            z = 0.6745 * (total - middle) / spread if spread > 0 else math.inf
            if z <= MAD_Z or total < MONTH_RATIO * middle or total - middle < floor or middle <= 0:
                continue
            name = category.value.replace("_", " ")
            reason = (
                f"You spent {money(total, currency)} on {name} in {month:%B %Y}, "
                f"{total / middle:.1f}x your usual {money(round(middle), currency)} a month."
            )
            found.append(Unusual("month", month, category, "", total, round(middle), "median_mad", reason))
    return found


def _months(first: date, last: date) -> list[date]:
    months = [month_of(first)]
    while months[-1] < month_of(last):
        month = months[-1]
        months.append(date(month.year + month.month // 12, month.month % 12 + 1, 1))
    return months


# ---- Patterns worth a look -------------------------------------------------------------------


def own_account_round_trips(
    entries: Sequence[Entry],
    within_days: int = ROUND_TRIP_DAYS,
    min_amount_minor: int = 10_000,
    currency: str = "GBP",
) -> list[ReviewItem]:
    """Money sent from an account to the member's own other account and (near enough) the same
    amount coming back into it within `within_days`, as a transfer or looking like income."""
    by_account: dict[str, list[Entry]] = defaultdict(list)
    for entry in sorted(entries, key=lambda e: e.day):
        if entry.category is C.TRANSFER or (entry.category in INCOME and entry.amount_minor > 0):
            by_account[entry.account or entry.account_kind].append(entry)
    items = []
    for moves in by_account.values():
        waiting: list[Entry] = []
        for entry in moves:
            if entry.amount_minor < 0 and entry.category is C.TRANSFER and -entry.amount_minor >= min_amount_minor:
                waiting.append(entry)
                continue
            if entry.amount_minor <= 0:
                continue
            match = next(
                (
                    out
                    for out in waiting
                    if (entry.day - out.day).days <= within_days
                    and abs(entry.amount_minor + out.amount_minor) <= ROUND_TRIP_TOLERANCE * -out.amount_minor
                ),
                None,
            )
            if match is None:
                continue
            waiting.remove(match)
            looks_like = " as if it were income" if entry.category in INCOME else ""
            reason = (
                f"{money(-match.amount_minor, currency)} left this account for another of yours on "
                f"{match.day:%-d %b} and came back on {entry.day:%-d %b}{looks_like}: money moved in a "
                "circle is neither income nor saving."
            )
            items.append(ReviewItem("own_account_round_trip", match.day, entry.day, entry.amount_minor, reason))
    return items


def income_spike_before_close(
    entries: Sequence[Entry],
    window: tuple[date, date],
    salary: IncomeStream | None = None,
    days: int = SPIKE_DAYS,
    currency: str = "GBP",
) -> ReviewItem | None:
    """Income beyond the salary arriving in the last `days` days of a badge window (first and
    last day, inclusive), far above what the member's own previous months saw in their last days."""
    unexplained = _unexplained_income(entries, salary)
    start_of_end = window[1] - timedelta(days=days - 1)
    late = sum(amount for day, amount in unexplained if start_of_end <= day <= window[1])
    if late <= 0:
        return None
    first_day = min(e.day for e in entries)
    baseline = []
    for month in _months(first_day, window[0] - timedelta(days=1)):
        end = _month_end(month)
        if month < first_day or end >= window[0]:  # the history's partial first month; the window
            continue
        baseline.append(sum(amount for day, amount in unexplained if end - timedelta(days=days - 1) <= day <= end))
    if len(baseline) >= MIN_MONTHS_BASELINE:
        usual = statistics.median(baseline)
        threshold = max(SPIKE_FACTOR * usual, max(baseline))
        compared = f"your usual {money(round(usual), currency)} in a month's last {days} days"
    else:  # too little history: against the window's own earlier days
        earlier = sum(amount for day, amount in unexplained if window[0] <= day < start_of_end)
        earlier_days = max(1, (start_of_end - window[0]).days)
        usual = earlier / earlier_days * days
        threshold = SPIKE_FACTOR * usual
        compared = f"{money(round(usual), currency)} in {days} days earlier in the window"
    monthly_income = _median_monthly_income(entries)
    if late <= threshold or late < 0.25 * monthly_income:
        return None
    reason = (
        f"{money(late, currency)} of income besides your pay arrived in the last {days} days before "
        f"{window[1]:%-d %b %Y}, against {compared}. A badge that closes then waits for a review."
    )
    return ReviewItem("income_spike_before_close", start_of_end, window[1], late, reason)


def _unexplained_income(entries: Sequence[Entry], salary: IncomeStream | None) -> list[tuple[date, int]]:
    """Income into current accounts, less salary payments up to `SALARY_EXPLAINS` times typical."""
    salary_key = payer_key(salary.payer) if salary is not None else None
    result = []
    for entry in entries:
        if entry.amount_minor <= 0 or entry.category not in INCOME or entry.account_kind == "savings":
            continue
        amount = entry.amount_minor
        if salary is not None and payer_key(entry.merchant) == salary_key:
            amount = max(0, amount - round(SALARY_EXPLAINS * salary.typical_minor))
        if amount:
            result.append((entry.day, amount))
    return result


def _median_monthly_income(entries: Sequence[Entry]) -> float:
    totals: dict[date, int] = defaultdict(int)
    for entry in entries:
        if entry.amount_minor > 0 and entry.category in INCOME and entry.account_kind != "savings":
            totals[month_of(entry.day)] += entry.amount_minor
    return statistics.median(totals.values()) if totals else 0.0


def _month_end(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1) - timedelta(days=1)
