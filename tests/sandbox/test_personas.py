"""Generated histories: reproducible, and each persona shaped as its name says."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from datetime import date, timedelta

import httpx
import pytest

from badges.banking.sandbox import SandboxSettings, create_sandbox_app
from badges.banking.sandbox.history import History, generate
from badges.banking.sandbox.personas import PERSONAS
from tests.sandbox.conftest import TODAY, Sandbox, plaid_api, serving

DAY = TODAY.date()


def history(username: str, seed: str = "seed-1", months: int = 12) -> History:
    return generate(PERSONAS[username], seed, DAY, months)


def spend(h: History, detailed: set[str], since: date, until: date) -> float:
    return sum(
        t.amount for t in h.transactions if t.category.detailed in detailed and since <= t.authorized_date < until
    )


async def linked_history(user_id: str) -> list[dict[str, object]]:
    """A fresh sandbox, one link by `user_id` as the gambler: the raw synced transactions."""
    app = create_sandbox_app(SandboxSettings(), clock=lambda: TODAY)
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        sandbox = Sandbox(url, plaid_api(url), http)
        _, transactions = await sandbox.skip_history(await sandbox.link("user_gambler", user_id=user_id))
        return transactions


async def test_the_same_user_persona_and_bank_give_the_same_history_ids_included() -> None:
    first, again, other = await linked_history("member-1"), await linked_history("member-1"), await linked_history("x")
    assert first == again
    assert [t["transaction_id"] for t in first] != [t["transaction_id"] for t in other]


def test_generation_is_reproducible_and_seed_dependent() -> None:
    assert history("user_spender") == history("user_spender")
    assert history("user_spender").transactions != history("user_spender", seed="seed-2").transactions


@pytest.mark.parametrize("months", [12, 24])
@pytest.mark.parametrize("username", sorted(PERSONAS))
def test_every_persona_has_two_accounts_and_history_ending_today(username: str, months: int) -> None:
    h = history(username, months=months)
    assert [a.subtype for a in h.accounts] == ["checking", "savings"]
    dates = [t.date for t in h.transactions]
    assert min(dates) <= DAY - timedelta(days=months * 30) and max(dates) == DAY
    categories = {t.category.primary for t in h.transactions}
    assert {"INCOME", "RENT_AND_UTILITIES", "FOOD_AND_DRINK", "LOAN_PAYMENTS"} <= categories
    recent_pending = [t for t in h.transactions if t.pending]
    assert all(t.date >= DAY - timedelta(days=3) for t in recent_pending)


def test_gambler_gambles_and_good_does_not() -> None:
    gambling = {"ENTERTAINMENT_CASINOS_AND_GAMBLING"}
    year_ago = DAY - timedelta(days=365)
    assert spend(history("user_gambler"), gambling, year_ago, DAY) > 1000
    assert spend(history("user_good"), gambling, year_ago, DAY) == 0


def test_fastfood_eats_more_fast_food_than_the_saver() -> None:
    fast_food = {"FOOD_AND_DRINK_FAST_FOOD"}
    year_ago = DAY - timedelta(days=365)
    assert spend(history("user_fastfood"), fast_food, year_ago, DAY) > 5 * spend(
        history("user_saver"), fast_food, year_ago, DAY
    )


def test_improver_last_quarter_is_clearly_better_than_the_one_before() -> None:
    h = history("user_improver")
    quarter_start, previous_start = DAY - timedelta(days=90), DAY - timedelta(days=180)
    vices = {"FOOD_AND_DRINK_FAST_FOOD", "ENTERTAINMENT_CASINOS_AND_GAMBLING"}
    saved = {"TRANSFER_OUT_SAVINGS"}
    assert spend(h, vices, quarter_start, DAY) < 0.5 * spend(h, vices, previous_start, quarter_start)
    assert spend(h, saved, quarter_start, DAY) > 3 * spend(h, saved, previous_start, quarter_start)


def monthly_income(h: History) -> list[float]:
    by_month: dict[tuple[int, int], float] = defaultdict(float)
    for t in h.transactions:
        if t.category.primary == "INCOME" and t.category.detailed != "INCOME_INTEREST_EARNED":
            by_month[(t.date.year, t.date.month)] -= t.amount
    full_months = sorted(by_month)[1:-1]
    return [by_month[month] for month in full_months]


def test_irregular_income_varies_and_salaries_do_not() -> None:
    def variation(values: list[float]) -> float:
        return statistics.pstdev(values) / statistics.mean(values)

    assert variation(monthly_income(history("user_irregular_income"))) > 0.2
    assert variation(monthly_income(history("user_saver"))) < 0.05
    assert any(t.category.detailed == "INCOME_OTHER_INCOME" for t in history("user_irregular_income").transactions)


def test_generation_is_fast_enough_for_a_thousand_member_benchmark() -> None:
    """1,000 items x 12 months must stay well under a minute: 100 here, with a generous bound."""
    started = time.process_time()
    for n in range(100):
        generate(PERSONAS[sorted(PERSONAS)[n % len(PERSONAS)]], f"bench-{n}", DAY, 12)
    assert time.process_time() - started < 3.0
