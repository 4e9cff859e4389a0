"""Savings round trips: money moved into savings and back out within a week (from savings, or
disguised as a transfer from another own account or as income) is neither saving nor income, each
is named by a stable key, the ones the ordinary figures would have counted go to a person, a
reviewer's clearance counts the money again, and savings badges count a deposit only once it has
stayed a week."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from importlib import resources

from badges.banking.sandbox.personas import PERSONAS
from badges.domain.catalogue import parse_catalogue
from badges.domain.categories import SpendingCategory
from badges.domain.definitions import BadgeDefinition
from badges.domain.figures import Entry, monthly_figures
from badges.domain.financial import decide
from badges.domain.goals import Goal
from badges.domain.quality import AccountState
from badges.insights.picture import Picture, member_picture
from badges.insights.round_trips import (
    RoundTrip,
    savings_round_trips,
    settled_on,
    unsettled_savings,
    without_round_trips,
)
from tests.unit.persona_histories import persona_history

C = SpendingCategory
SAVINGS_BADGES = ("first-thousand", "tenth-saver", "steady-saver", "rainy-day-fund")


def shipped(*badge_ids: str) -> list[BadgeDefinition]:
    catalogue = parse_catalogue(resources.files("badges").joinpath("catalogue.yaml").read_text(encoding="utf-8"))
    return [BadgeDefinition.from_spec(badge_id, 1, catalogue.badges[badge_id]) for badge_id in badge_ids]


def earned(picture: Picture, *badge_ids: str) -> set[str]:
    return {verdict.badge_id for verdict in decide(shipped(*badge_ids), picture.snapshot) if verdict.earned}


def picture(entries: list[Entry], today: date, cleared: frozenset[str] = frozenset(), balance: int = 0) -> Picture:
    accounts = [AccountState("chk", "current", None, 500_000), AccountState("sav", "savings", None, balance)]
    now = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    return member_picture(entries, [], accounts, now, today, now, cleared=cleared)


def salary(first: date, months: int, amount: int = 300_000) -> list[Entry]:
    return [
        Entry(_month(first, n), amount, C.INCOME_SALARY, account="chk", transaction_id=f"pay-{n}")
        for n in range(months)
    ]


def _month(first: date, n: int) -> date:
    return date(first.year + (first.month - 1 + n) // 12, (first.month - 1 + n) % 12 + 1, first.day)


def to_savings(day: date, amount: int, name: str) -> Entry:
    return Entry(day, -amount, C.SAVINGS, account="chk", transaction_id=name)


def back(day: date, amount: int, category: SpendingCategory, name: str) -> Entry:
    return Entry(day, amount, category, account="chk", transaction_id=name)


def circling(months: int, came_back_as: SpendingCategory, amount: int = 60_000) -> list[Entry]:
    """Salary on the 1st from January 2026; each month a fifth of it into savings on the 10th and
    the same back on the 13th, labelled `came_back_as`."""
    entries = salary(date(2026, 1, 1), months)
    for n in range(months):
        entries.append(to_savings(_month(date(2026, 1, 10), n), amount, f"out-{n}"))
        entries.append(back(_month(date(2026, 1, 13), n), amount, came_back_as, f"back-{n}"))
    return entries


def test_money_moved_into_savings_and_straight_back_out_is_not_saved_even_across_a_month_end() -> None:
    deposit = to_savings(date(2026, 3, 30), 100_000, "out")
    returned = back(date(2026, 4, 2), 100_000, C.SAVINGS, "back")
    entries = [*persona_history("user_fastfood").entries, deposit, returned]
    [trip] = savings_round_trips(entries)
    assert (trip.first_day, trip.last_day, trip.amount_minor, trip.returned_as) == (
        date(2026, 3, 30),
        date(2026, 4, 2),
        100_000,
        "savings",
    )
    assert (
        trip.reason()
        == "1,000.00 went into savings on 30 Mar 2026 and came back from savings 3 days later (2 Apr 2026)."
    )
    march = lambda figures: next(f for f in figures if f.month == date(2026, 3, 1))  # noqa: E731
    plain = march(monthly_figures(persona_history("user_fastfood").entries)).savings_minor
    assert march(monthly_figures(entries)).savings_minor == plain + 100_000  # what the ordinary rule counts
    assert march(monthly_figures(without_round_trips(entries))).savings_minor == plain


def test_savings_kept_longer_than_the_window_partly_taken_back_or_seen_from_the_savings_side() -> None:
    kept = [to_savings(date(2026, 3, 1), 50_000, "a"), back(date(2026, 3, 20), 50_000, C.SAVINGS, "b")]
    assert savings_round_trips(kept) == [] and without_round_trips(kept) == kept
    partly = [to_savings(date(2026, 3, 1), 50_000, "a"), back(date(2026, 3, 3), 20_000, C.SAVINGS, "b")]
    [trip] = savings_round_trips(partly)
    assert trip.amount_minor == 20_000
    assert [e.amount_minor for e in without_round_trips(partly)] == [-30_000]
    # The latest deposits go back first.
    two = [*partly[:1], to_savings(date(2026, 3, 2), 10_000, "c"), back(date(2026, 3, 3), 25_000, C.SAVINGS, "d")]
    [trip] = savings_round_trips(two)
    assert [(deposit.transaction_id, amount) for deposit, amount in trip.deposits] == [("c", 10_000), ("a", 15_000)]
    # Only the savings account linked: its own side shows the same trip.
    savings_side = [
        Entry(date(2026, 3, 1), 50_000, C.SAVINGS, account_kind="savings"),
        Entry(date(2026, 3, 2), -50_000, C.SAVINGS, account_kind="savings"),
    ]
    assert [trip.amount_minor for trip in savings_round_trips(savings_side)] == [50_000]


def test_money_back_disguised_as_a_transfer_or_as_income_is_a_round_trip() -> None:
    for came_back_as, named in ((C.TRANSFER, "transfer"), (C.INCOME_OTHER, "income")):
        entries = circling(3, came_back_as)
        trips = savings_round_trips(entries)
        assert [(t.first_day, t.last_day, t.amount_minor, t.returned_as) for t in trips] == [
            (date(2026, m, 10), date(2026, m, 13), 60_000, named) for m in (1, 2, 3)
        ]
        # The ordinary figures count a fifth of income saved every month; net of the trips, nothing,
        # and money that came back as income is not income either.
        assert [f.savings_minor for f in monthly_figures(entries)] == [60_000] * 3
        net = monthly_figures(without_round_trips(entries, trips))
        assert [(f.savings_minor, f.income_minor) for f in net] == [(0, 300_000)] * 3
    assert (
        "came back as a transfer from another of the member's accounts 3 days later"
        in savings_round_trips(circling(1, C.TRANSFER))[0].reason()
    )


def test_a_disguised_return_must_match_a_deposit_still_held_within_the_window() -> None:
    start = [*salary(date(2026, 1, 1), 1), to_savings(date(2026, 1, 10), 60_000, "out")]
    near = back(date(2026, 1, 12), 60_900, C.TRANSFER, "near")  # within 2 %
    assert [t.amount_minor for t in savings_round_trips([*start, near])] == [60_000]
    other = back(date(2026, 1, 12), 45_000, C.TRANSFER, "other")  # a different sum: someone else's money
    late = back(date(2026, 1, 18), 60_000, C.INCOME_OTHER, "late")  # 8 days on
    salary_in = back(date(2026, 1, 12), 60_000, C.INCOME_SALARY, "pay")  # pay is pay
    for unrelated in (other, late, salary_in):
        assert savings_round_trips([*start, unrelated]) == [], unrelated
    small = [to_savings(date(2026, 1, 10), 5_000, "s"), back(date(2026, 1, 11), 5_000, C.TRANSFER, "t")]
    assert savings_round_trips(small) == []  # below 100.00 a matching transfer is a coincidence
    # The other side of a move between two current accounts is not money back from savings.
    moved = Entry(date(2026, 1, 11), -60_000, C.TRANSFER, account="joint", transaction_id="moved")
    arrived = back(date(2026, 1, 12), 60_000, C.TRANSFER, "arrived")
    assert savings_round_trips([*start, moved, arrived]) == []
    # One deposit is taken back once: a second matching transfer is someone else's money.
    again = back(date(2026, 1, 13), 60_000, C.TRANSFER, "again")
    assert len(savings_round_trips([*start, near, again])) == 1


def test_each_round_trip_has_a_stable_key_and_only_those_the_figures_would_count_go_for_review() -> None:
    entries = circling(2, C.TRANSFER)
    first, second = savings_round_trips(entries)
    assert first.key != second.key and len(first.key) == 32
    assert [t.key for t in savings_round_trips(list(reversed(entries)))] == [first.key, second.key]
    assert [t.key for t in savings_round_trips([*entries, *salary(date(2026, 3, 1), 1)])] == [first.key, second.key]
    assert first.for_review and second.for_review  # disguised
    inside = RoundTrip(
        ((to_savings(date(2026, 3, 2), 10_000, "a"), 10_000),),
        back(date(2026, 3, 5), 10_000, C.SAVINGS, "b"),
        "savings",
    )
    across = RoundTrip(
        ((to_savings(date(2026, 3, 30), 10_000, "c"), 10_000),),
        back(date(2026, 4, 2), 10_000, C.SAVINGS, "d"),
        "savings",
    )
    assert not inside.for_review and across.for_review
    # No persona's history has one.
    for username in PERSONAS:
        assert savings_round_trips(persona_history(username).entries) == [], username


def test_a_round_trip_a_reviewer_cleared_counts_as_the_ordinary_rules_count_it() -> None:
    entries = circling(3, C.TRANSFER)
    trips = savings_round_trips(entries)
    cleared = {trips[0].key, trips[2].key}
    net = monthly_figures(without_round_trips(entries, trips, cleared))
    assert [f.savings_minor for f in net] == [60_000, 0, 60_000]


def test_a_member_whose_only_savings_are_round_trips_earns_no_savings_badge_until_a_reviewer_clears_them() -> None:
    today = date(2026, 7, 20)
    entries = circling(6, C.TRANSFER)
    found = picture(entries, today)
    assert len(found.for_review) == 6 and found.snapshot.total_saved_minor == 0
    assert earned(found, *SAVINGS_BADGES) == set()
    assert found.document()["savingsRoundTrips"] == 6
    # Found not suspicious: the money counts as saved on the next evaluation.
    cleared = picture(entries, today, frozenset(trip.key for trip in found.for_review))
    assert cleared.snapshot.total_saved_minor == 6 * 60_000
    assert earned(cleared, *SAVINGS_BADGES) >= {"first-thousand", "tenth-saver"}


def test_savings_badges_count_a_deposit_once_it_has_stayed_a_week() -> None:
    # 800.00 saved over four months, then 200.00 more on 28 June: the thousand is reached that day.
    entries = [*salary(date(2026, 1, 1), 6), *(to_savings(date(2026, m, 2), 20_000, f"s{m}") for m in range(1, 5))]
    entries.append(to_savings(date(2026, 6, 28), 20_000, "late"))
    two_days_on = picture(entries, date(2026, 6, 30), balance=100_000)
    assert (two_days_on.snapshot.total_saved_minor, two_days_on.unsettled_savings_minor) == (80_000, 20_000)
    assert two_days_on.document()["totalSavedMinor"] == 100_000  # the member sees all they saved
    assert two_days_on.snapshot.liquid_savings_minor == 80_000
    assert earned(two_days_on, "first-thousand") == set()
    assert earned(picture(entries, date(2026, 7, 5), balance=100_000), "first-thousand") == {"first-thousand"}
    # Taken back out three days later: a round trip, never counted, and put to a person (it crosses a month end).
    taken = [*entries, back(date(2026, 7, 1), 20_000, C.SAVINGS, "back")]
    later = picture(taken, date(2026, 7, 5), balance=80_000)
    assert earned(later, "first-thousand") == set() and [t.key for t in later.for_review] != []
    assert unsettled_savings(entries, date(2026, 6, 30)) == {date(2026, 6, 1): 20_000}
    assert settled_on(date(2026, 6, 30)) == date(2026, 6, 23)


def test_a_burst_into_savings_just_before_a_window_closes_waits_until_it_has_stayed_a_week() -> None:
    # A tenth saved in March and April; May's tenth goes in on the 30th.
    entries = [*salary(date(2026, 1, 1), 6, amount=300_000)]
    entries += [to_savings(date(2026, 3, 2), 40_000, "mar"), to_savings(date(2026, 4, 2), 40_000, "apr")]
    entries.append(to_savings(date(2026, 5, 30), 40_000, "may"))
    early = picture(entries, date(2026, 6, 2))
    assert earned(early, "tenth-saver") == set()  # May's saving has not stayed a week
    [waiting] = decide(shipped("tenth-saver"), early.snapshot)
    assert waiting.value == 2  # May waits: the run neither grows nor breaks
    assert earned(picture(entries, date(2026, 6, 8)), "tenth-saver") == {"tenth-saver"}  # kept: counted
    # Out again on 2 June: May saved nothing.
    gone = [*entries, back(date(2026, 6, 2), 40_000, C.SAVINGS, "jun")]
    assert earned(picture(gone, date(2026, 6, 8)), "tenth-saver") == set()
    # Saved early in May, and the month is decided as soon as it is over.
    prompt = [*entries[:-1], to_savings(date(2026, 5, 4), 40_000, "may")]
    assert earned(picture(prompt, date(2026, 6, 1)), "tenth-saver") == {"tenth-saver"}
    # The same for a quarter: steady-saver counts the burst once it has stayed a week.
    quarters = [*salary(date(2026, 1, 1), 7), *(to_savings(date(2026, m, 2), 10_000, f"q{m}") for m in range(1, 7))]
    quarters.append(to_savings(date(2026, 6, 29), 50_000, "burst"))
    assert earned(picture(quarters, date(2026, 7, 1)), "steady-saver") == set()
    assert earned(picture(quarters, date(2026, 7, 1) + timedelta(days=7)), "steady-saver") == {"steady-saver"}


def test_a_save_goal_is_reached_once_the_saving_that_reaches_it_has_stayed_a_week() -> None:
    goal = Goal(
        goal_id="g", kind="save", name="Bike", created_on=date(2026, 6, 1), reached_on=None, target_minor=20_000
    )
    entries = [*salary(date(2026, 1, 1), 6), to_savings(date(2026, 6, 28), 20_000, "bike")]

    def at(today: date) -> Picture:
        now = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
        return member_picture(entries, [], [], None, today, now, [goal])

    [settling] = at(date(2026, 6, 30)).goals
    assert not settling.reached and settling.save is not None and settling.save.saved_minor == 20_000
    assert "once the last week's saving has stayed a week" in settling.save.reason
    [kept] = at(date(2026, 7, 5)).goals
    assert kept.reached and kept.newly_reached
