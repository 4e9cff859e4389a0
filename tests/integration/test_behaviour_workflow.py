"""BehaviourWorkflow on the time-skipping server with everything real: the `evaluate_behaviour`
activity on PostgreSQL, the member's UserBadgesWorkflow recording progress and awards, bank data
stored as a sync stores it (`apply_sync_batch`, or the sandbox bank through BankSyncWorkflow) and
announced as a sync announces it (`data_changed`). Dates are relative to the test server's clock,
which the tests move on:

- linking backfills every complete past window of the history;
- a window is decided once it has closed (not on its last day), by the durable timer at the
  member's next window close with no new data; bank data dated after the evaluation's day wait;
- late data re-decide a closed window; awards are made once; a stale write moves nothing back;
- a consent that lapses on the workflow's clock stops evaluation, and a later run of the workflow
  (consent granted again) is heard;
- the improver's better habits are seen when a complete quarter shows them, not before.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from plaid.model.item_get_request import ItemGetRequest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.converter import DataConverter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from badges.activities.banking import categorised
from badges.activities.behaviour import next_window_close
from badges.api.catalogue import read_catalogue_file
from badges.banking.sandbox import SandboxSettings, create_sandbox_app, history
from badges.banking.sandbox.personas import PERSONAS
from badges.banking.sandbox.records import Transaction as SandboxTransaction
from badges.config import Settings
from badges.db.banking import SyncBatch, apply_sync_batch, connection_state, link_connection
from badges.db.catalogue import load_catalogue, seed_catalogue
from badges.db.consents import upsert_consent
from badges.db.insights import member_insights
from badges.db.keys import KeyStore
from badges.db.members import set_member_timezone
from badges.db.progress import AwardRecord, member_badges
from badges.domain.banking import Account, Exchanged, Transaction, primary_category
from badges.domain.catalogue import parse_catalogue
from badges.domain.categories import SpendingCategory, from_provider
from badges.domain.financial import Verdict
from badges.domain.identity import bank_sync_workflow_id, behaviour_workflow_id, user_badges_workflow_id
from badges.insights.categoriser import load as load_categoriser
from badges.messages.bank_sync import BankSyncInput
from badges.messages.behaviour import DataChanged, FinancialResults
from badges.temporal import behaviour_data_changed, record_financial_results
from badges.workers.main import sandbox_everything
from badges.workflows.bank_sync import BankSyncWorkflow
from badges.workflows.behaviour import BehaviourWorkflow
from badges.workflows.user_badges import UserBadgesWorkflow
from tests.conftest import create_member
from tests.integration.support import running_worker
from tests.sandbox.conftest import CLIENT_ID, INSTITUTION, SECRET, Sandbox, call, plaid_api
from tests.support import eventually, serving

LONDON = ZoneInfo("Europe/London")
UTC_ZONE = ZoneInfo("UTC")
FOR_YEARS = timedelta(days=3650)
CHECKING, SAVINGS = "chk-1", "sav-1"


def shift_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def last_day(month: date) -> date:
    return shift_months(month, 1) - timedelta(days=1)


def quarter_start(day: date) -> date:
    return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


# --- a member's bank, as a sync stores it --------------------------------------------------------


def transaction(day: date, amount_minor: int, detailed: str, label: str, mcc: str | None = None) -> Transaction:
    """A posted transaction on the current account the provider is sure of (ids stable, so a
    provider sending it again is the same transaction)."""
    return Transaction(
        transaction_id=f"{day:%Y%m%d}-{label}",
        account_id=CHECKING,
        amount_minor=amount_minor,
        currency="GBP",
        posted_date=day,
        authorized_date=day,
        description=label.upper().replace("-", " "),
        merchant_name=label.split("-")[0].title(),
        category_primary=primary_category(detailed),
        category_detailed=detailed,
        pending=False,
        pending_transaction_id=None,
        category_confidence_level="VERY_HIGH",
        mcc=mcc,
    )


def groceries(day: date, amount_minor: int, label: str = "tesco-stores") -> Transaction:
    return transaction(day, amount_minor, "FOOD_AND_DRINK_GROCERIES", label, "5411")


# Seven months, oldest first, ending with the month of the first evaluation (M): groceries (four
# shops a month; rent and fast food are the same every month), and what goes to savings.
GROCERIES = (60_000, 60_000, 44_000, 50_000, 50_000, 44_000, 44_000)  # M-4 spends 10.5 % less than M-5
SAVED = (5_000, 5_000, 5_000, 5_000, 26_000, 26_000, 26_000)  # a tenth of pay from M-2 on
PAY = 250_000
STANDING_ORDER = 5_000  # to savings on the 20th of M: takes the total saved past 1,000.00


def statement(month: date) -> list[Transaction]:
    """Every transaction of the seven months ending with `month` (the bank holds the standing order
    of the 20th ahead of its date); the caller takes those a sync would have brought so far."""
    rows = []
    for index, (shopping, saved) in enumerate(zip(GROCERIES, SAVED, strict=True)):
        first = shift_months(month, index - len(GROCERIES) + 1)
        rows += [
            transaction(first, PAY, "INCOME_WAGES", "acme-ltd-salary"),
            transaction(first + timedelta(days=1), -90_000, "RENT_AND_UTILITIES_RENT", "landlord-rent"),
            transaction(first + timedelta(days=2), -saved, "TRANSFER_OUT_SAVINGS", "transfer-to-savings"),
            transaction(first + timedelta(days=7), -1_000, "FOOD_AND_DRINK_FAST_FOOD", "mcdonalds", "5814"),
            transaction(first + timedelta(days=21), -1_000, "FOOD_AND_DRINK_FAST_FOOD", "mcdonalds", "5814"),
        ]
        rows += [groceries(first + timedelta(days=day), -shopping // 4) for day in (4, 11, 18, 25)]
    # One bet, early on: the clean stretch after it is the gambling-free quarter.
    bet_day = shift_months(month, -6) + timedelta(days=19)
    rows.append(transaction(bet_day, -2_000, "ENTERTAINMENT_CASINOS_AND_GAMBLING", "bet365", "7995"))
    rows.append(transaction(month + timedelta(days=19), -STANDING_ORDER, "TRANSFER_OUT_SAVINGS", "standing-order"))
    return sorted(rows, key=lambda row: row.posted_date)


ACCOUNTS = [
    Account(CHECKING, "Current account", "1234", "depository", "checking", "GBP", 180_000),
    Account(SAVINGS, "Savings", "5678", "depository", "savings", "GBP", 250_000),
]


@dataclass
class Member:
    """One member on the time-skipping server, with the real worker, their workflows and their data."""

    env: WorkflowEnvironment
    settings: Settings  # the worker's (its task queue)
    pool: AsyncConnectionPool
    engine: AsyncEngine
    keys: KeyStore
    id: uuid.UUID
    connection_id: uuid.UUID | None = None
    cursor: int = 0

    @property
    def behaviour(self) -> WorkflowHandle[Any, Any]:
        return self.env.client.get_workflow_handle(behaviour_workflow_id(self.id))

    @property
    def badge_workflow(self) -> WorkflowHandle[Any, Any]:
        return self.env.client.get_workflow_handle(user_badges_workflow_id(self.id))

    async def consent(self, scope: str, expires_at: datetime) -> None:
        granted = datetime.now(UTC) - timedelta(minutes=1)
        async with self.pool.connection() as connection, connection.transaction():
            await upsert_consent(
                connection,
                self.id,
                scope,
                purpose="my money",
                granted_at=granted,
                expires_at=expires_at,
                revoked_at=None,
            )

    async def link(self) -> None:
        token = f"access-{uuid.uuid4()}"
        linked = await link_connection(
            self.pool, self.keys, self.id, "plaid", Exchanged(token, f"item-{uuid.uuid4()}", "ins_test")
        )
        self.connection_id = linked.connection_id

    async def sync(self, added: Sequence[Transaction], modified: Sequence[Transaction] = ()) -> None:
        """Store a batch as the sync does (categorised, the member's corrections winning) and tell
        the member's behaviour workflow which dates changed, as the sync does."""
        assert self.connection_id is not None
        state = await connection_state(self.pool, self.keys, self.connection_id)
        assert state is not None
        self.cursor += 1
        batch = SyncBatch(list(added), list(modified), [], ACCOUNTS, next_cursor=f"cursor-{self.cursor}")
        categories = await categorised(load_categoriser(), [*batch.added, *batch.modified])
        applied = await apply_sync_batch(self.pool, self.keys, state, batch, categories)
        assert applied is not None
        await self.data_changed(DataChanged(first=applied.first_date, last=applied.last_date))

    async def data_changed(self, change: DataChanged) -> None:
        await behaviour_data_changed(self.env.client, self.settings, self.id, change)

    async def settled(self, evaluations: int) -> None:
        """Until the behaviour workflow has made `evaluations` evaluations and the member's badge
        workflow has recorded the last one."""

        async def done() -> bool:
            try:
                if await self.behaviour.query(BehaviourWorkflow.evaluations) != evaluations:
                    return False
                if (await self.behaviour.describe()).raw_description.pending_activities:
                    return False
                snapshot = await self.badge_workflow.query(UserBadgesWorkflow.snapshot)
            except RPCError:
                return False  # not started yet
            return snapshot.state.financial_seq == await self.stored_seq()

        await eventually(done, timeout=60)

    async def stored_seq(self) -> int | None:
        async with self.pool.connection() as connection:
            cursor = await connection.execute("SELECT seq FROM member_insights WHERE user_id = %s", (self.id,))
            row = await cursor.fetchone()
        return int(row[0]) if row else None

    async def standing(self) -> tuple[dict[str, tuple[int, int]], dict[str, list[AwardRecord]]]:
        """Progress (value, target) and awards, by badge."""
        progress, awards = await member_badges(self.engine, self.id)
        by_badge: dict[str, list[AwardRecord]] = defaultdict(list)
        for award in awards:
            by_badge[award.badge_id].append(award)
        return {p.badge_id: (p.value, p.target) for p in progress}, by_badge

    async def instances(self, badge_id: str) -> list[str]:
        return [award.instance for award in (await self.standing())[1].get(badge_id, [])]

    async def progress(self, badge_id: str) -> tuple[int, int]:
        return (await self.standing())[0][badge_id]

    async def months(self) -> dict[str, dict[str, Any]]:
        """The dashboard's months, by their first day."""
        stored = await member_insights(self.pool, self.keys, self.id)
        assert stored is not None
        return {month["month"]: month for month in stored[1]["months"]}

    async def finish(self, data_converter: DataConverter) -> None:
        """Stop the member's workflows (none may be left on the shared server without a worker),
        and replay the behaviour workflow's history."""
        with suppress(RPCError):
            await self.behaviour.signal(BehaviourWorkflow.stop)
        with suppress(RPCError):
            await self.badge_workflow.terminate(reason="test over")

        async def ended() -> bool:
            return (await self.behaviour.describe()).status != WorkflowExecutionStatus.RUNNING

        await eventually(ended)
        replayer = Replayer(workflows=[BehaviourWorkflow], data_converter=data_converter, **sandbox_everything())
        await replayer.replay_workflow(await self.behaviour.fetch_history())


async def skip_to(env: WorkflowEnvironment, moment: datetime) -> None:
    now = await env.get_current_time()
    if moment > now:
        await env.sleep(moment - now)


async def seed_badges(engine: AsyncEngine) -> dict[str, int]:
    """The shipped catalogue in the database (as the API loads it at start-up); each badge's version."""
    await seed_catalogue(engine, parse_catalogue(read_catalogue_file("")))
    return {badge.badge_id: badge.version for badge in (await load_catalogue(engine))[1]}


async def next_twelfth(env: WorkflowEnvironment) -> datetime:
    """Noon on the 12th of the month after the test server's current one: the day of the first
    evaluation, far enough from any month's end."""
    now = await env.get_current_time()
    return datetime.combine(shift_months(now.date().replace(day=1), 1).replace(day=12), time(12), UTC)


@asynccontextmanager
async def member_on_worker(
    env: WorkflowEnvironment,
    settings: Settings,
    pool: AsyncConnectionPool,
    engine: AsyncEngine,
    keys: KeyStore,
    data_converter: DataConverter,
    *,
    zone: ZoneInfo = LONDON,
    tracking_until: datetime | None = None,
    **worker_settings: Any,
) -> AsyncIterator[Member]:
    """A new member (in `zone`) consenting to open banking and behaviour tracking (until
    `tracking_until`; by default for years), with the project's worker running."""
    await seed_badges(engine)
    member_id = await create_member(engine, keys)
    await set_member_timezone(engine, member_id, zone.key)
    async with running_worker(env, settings, pool, engine, keys, **worker_settings) as task_queue:
        member = Member(env, settings.model_copy(update={"task_queue": task_queue}), pool, engine, keys, member_id)
        now = max(datetime.now(UTC), await env.get_current_time())
        await member.consent("open_banking", now + FOR_YEARS)
        await member.consent("behaviour_tracking", tracking_until or now + FOR_YEARS)
        try:
            yield member
        finally:
            await member.finish(data_converter)


# --- backfill and window rollover ------------------------------------------------------------------


async def test_linking_backfills_past_windows_and_the_timer_decides_a_window_once_it_closes(
    time_skipping: WorkflowEnvironment,
    settings: Settings,
    engine: AsyncEngine,
    keys: KeyStore,
    pool: AsyncConnectionPool,
    data_converter: DataConverter,
) -> None:
    env = time_skipping
    first_look = await next_twelfth(env)
    await skip_to(env, first_look)
    month = first_look.date().replace(day=1)  # M
    rows = statement(month)
    async with member_on_worker(env, settings, pool, engine, keys, data_converter) as member:
        await member.link()
        # The first sync brings the history so far (and the standing order the bank lists ahead).
        await member.sync([row for row in rows if row.posted_date <= first_look.date() or is_standing_order(row)])
        await member.settled(1)

        # The backfill decided every complete window of the history, not only the latest: spending
        # fell by a tenth in M-4 (and not in M-1).
        assert await member.instances("spending-trimmer") == [shift_months(month, -4).isoformat()]
        # A tenth of pay saved in M-2 and M-1; M has not ended.
        assert await member.progress("tenth-saver") == (2, 3)
        assert await member.instances("tenth-saver") == []
        # The standing order dated the 20th is not counted before the 20th.
        assert await member.progress("first-thousand") == (98_000, 100_000)
        # Clean since the day after the bet: awarded, named by the day the 90 days were complete.
        clean_since = shift_months(month, -6) + timedelta(days=20)
        assert await member.instances("gambling-free-quarter") == [(clean_since + timedelta(days=89)).isoformat()]
        months = await member.months()
        assert [m["month"] for m in months.values() if m["complete"]] == [
            shift_months(month, n).isoformat() for n in range(-6, 0)
        ]

        # The last day of M, in the evening: a sync brings the rest of the month. M is not over.
        end = last_day(month)
        await skip_to(env, datetime.combine(end, time(18), LONDON).astimezone(UTC))
        await member.sync(
            [row for row in rows if first_look.date() < row.posted_date <= end and not is_standing_order(row)]
        )
        await member.settled(2)
        assert await member.progress("tenth-saver") == (2, 3)
        assert await member.instances("tenth-saver") == []
        assert months_complete(await member.months()) == 6
        assert await member.instances("first-thousand") == ["1"]  # the 20th has passed

        # Past the member's own window close (their jittered midnight): the timer evaluates, with
        # no new data, and M is decided.
        close = next_window_close(member.id, end, LONDON)
        assert close > datetime.combine(end + timedelta(days=1), time(0), LONDON)
        await skip_to(env, close + timedelta(minutes=1))
        await member.settled(3)
        assert await member.progress("tenth-saver") == (3, 3)
        assert await member.instances("tenth-saver") == ["1"]
        assert months_complete(await member.months()) == 7
        # Every award once, whatever number of evaluations saw it.
        _, awards = await member.standing()
        once = ("spending-trimmer", "tenth-saver", "first-thousand", "gambling-free-quarter", "rainy-day-fund")
        assert {badge: len(awards[badge]) for badge in once} == dict.fromkeys(once, 1)


def is_standing_order(row: Transaction) -> bool:
    return row.description == "STANDING ORDER"


def months_complete(months: dict[str, dict[str, Any]]) -> int:
    return sum(1 for month in months.values() if month["complete"])


# --- late data ------------------------------------------------------------------------------------


async def test_late_data_re_decide_closed_windows_and_awards_stay_once(
    time_skipping: WorkflowEnvironment,
    settings: Settings,
    engine: AsyncEngine,
    keys: KeyStore,
    pool: AsyncConnectionPool,
    data_converter: DataConverter,
) -> None:
    env = time_skipping
    first_look = await next_twelfth(env)
    await skip_to(env, first_look)
    month = first_look.date().replace(day=1)
    versions = await seed_badges(engine)
    async with member_on_worker(env, settings, pool, engine, keys, data_converter) as member:
        await member.link()
        await member.sync([row for row in statement(month) if row.posted_date <= first_look.date()])
        await member.settled(1)
        first_key = await member.stored_seq()
        assert first_key is not None
        previous = shift_months(month, -1)
        assert await member.instances("spending-trimmer") == [shift_months(month, -4).isoformat()]
        assert await member.progress("spending-trimmer") == (4, 10)  # M-1 spent 4 % less than M-2

        # A refund dated in M-1, a closed window, arrives late: M-1 now spent a tenth less.
        refund = groceries(previous + timedelta(days=19), 10_000, "tesco-stores-refund")
        await member.sync([refund])
        await member.settled(2)
        trimmed = [shift_months(month, -4).isoformat(), previous.isoformat()]
        assert await member.instances("spending-trimmer") == trimmed
        assert await member.progress("spending-trimmer") == (10, 10)

        # A purchase dated in M-1 arrives later still: the window no longer shows the tenth; the
        # award stays, made once, and the newer evaluation's progress is recorded.
        await member.sync([groceries(previous + timedelta(days=24), -9_000, "tesco-stores-late")])
        await member.settled(3)
        assert await member.progress("spending-trimmer") == (5, 10)
        # The provider sends the refund again (modified): the same transaction, nothing new.
        await member.sync([], modified=[refund])
        await member.settled(4)
        assert await member.instances("spending-trimmer") == trimmed

        # Late data in an older closed window (M-3, not the latest) re-decide it too.
        await member.sync([groceries(shift_months(month, -3) + timedelta(days=14), 20_000, "tesco-stores-refund")])
        await member.settled(5)
        assert await member.instances("spending-trimmer") == [*trimmed, shift_months(month, -3).isoformat()]

        # The first evaluation's verdict delivered again (a stale write, as a retried activity's
        # signal would be): nothing moves back.
        stale = Verdict(
            badge_id="spending-trimmer", version=versions["spending-trimmer"], value=4, target=10, earned=[]
        )
        results = FinancialResults(seq=first_key, verdicts=[stale])
        await record_financial_results(env.client, member.settings, member.id, results)
        await member.data_changed(DataChanged(reason="sync"))
        await member.settled(6)
        assert await member.progress("spending-trimmer") == (5, 10)
        async with pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT payload->>'value' FROM outbox WHERE user_id = %s AND kind = 'progress'"
                " AND payload->>'badgeId' = 'spending-trimmer' ORDER BY id",
                (member.id,),
            )
            announced = [int(row[0]) for row in await cursor.fetchall()]
        assert announced == [4, 10, 5]
        _, awards = await member.standing()
        assert len(awards["spending-trimmer"]) == 3


# --- consent on the workflow's clock, and a later run of the workflow --------------------------------


async def test_a_consent_that_lapses_on_the_workflows_clock_stops_evaluation_and_a_later_run_is_heard(
    time_skipping: WorkflowEnvironment,
    settings: Settings,
    engine: AsyncEngine,
    keys: KeyStore,
    pool: AsyncConnectionPool,
    data_converter: DataConverter,
) -> None:
    env = time_skipping
    first_look = await next_twelfth(env)
    await skip_to(env, first_look)
    month = first_look.date().replace(day=1)
    lapses = first_look + timedelta(days=5)  # ahead of the wall clock, before the month's close
    async with member_on_worker(env, settings, pool, engine, keys, data_converter, tracking_until=lapses) as member:
        await member.link()
        rows = statement(month)
        await member.sync([row for row in rows if row.posted_date <= first_look.date()])
        await member.settled(1)
        run = (await member.behaviour.describe()).run_id

        # The window closes after the consent lapsed (on the workflow's clock, the one the
        # evaluation answers for): nothing is evaluated and the workflow ends.
        await skip_to(env, next_window_close(member.id, last_day(month), LONDON) + timedelta(minutes=1))

        async def ended() -> bool:
            return (await member.behaviour.describe()).status == WorkflowExecutionStatus.COMPLETED

        await eventually(ended, timeout=30)
        assert await member.behaviour.query(BehaviourWorkflow.evaluations) == 2
        assert await member.instances("tenth-saver") == []

        # Granted again; the rest of M and a late refund in it arrive: a new run of the workflow
        # evaluates, and the member's badge workflow takes its verdicts as the newest.
        await member.consent("behaviour_tracking", first_look + FOR_YEARS)
        later = [row for row in rows if first_look.date() < row.posted_date]
        await member.sync([*later, groceries(month + timedelta(days=20), 14_000, "tesco-stores-refund")])
        assert (await member.behaviour.describe()).run_id != run
        await member.settled(1)
        assert await member.instances("tenth-saver") == ["1"]
        assert month.isoformat() in await member.instances("spending-trimmer")


# --- the improver --------------------------------------------------------------------------------


def fast_food(transactions: Iterable[SandboxTransaction], period: Callable[[date], date]) -> dict[date, int]:
    """Fast-food spending (as the programme categorises it) by the first day of each `period`."""
    totals: dict[date, int] = defaultdict(int)
    for t in transactions:
        found = from_provider(t.category.detailed, t.category.primary, None, t.mcc)
        if not t.pending and found is not None and found.category is SpendingCategory.FAST_FOOD:
            totals[period(t.date)] += round(t.amount * 100)
    return totals


def level_history_user(improved: date, generated_on: date, months: int) -> str:
    """A sandbox user whose improver history (generated on `generated_on`) keeps fast food level,
    within 15 %, from each complete quarter to the next before `improved` (the persona's habits
    are the same then, but a quarter's visits and prices vary by chance, and a chance fall of a
    fifth would rightly be awarded), and falls by half in the quarter from `improved`, its first
    month included."""
    persona = PERSONAS["user_improver"]
    for n in range(100):
        user = f"improver-{n}"
        made = history.generate(persona, f"{INSTITUTION}|{user}", generated_on, months)
        quarters = fast_food(made.transactions, quarter_start)
        first_month = fast_food(made.transactions, lambda day: day.replace(day=1))[improved]
        old = [q for q in sorted(quarters) if made.transactions[0].date <= q < improved]
        level = all(quarters[b] >= 0.85 * quarters[a] for a, b in itertools.pairwise(old))
        before = quarters[old[-1]] if old else 0
        if len(old) >= 2 and level and quarters[improved] <= 0.5 * before and first_month <= 0.5 * before / 3:
            return user
    raise AssertionError("no level improver history")


async def test_the_improvers_better_habits_are_seen_when_a_complete_quarter_shows_them_and_not_before(
    time_skipping: WorkflowEnvironment,
    settings: Settings,
    engine: AsyncEngine,
    keys: KeyStore,
    pool: AsyncConnectionPool,
    data_converter: DataConverter,
) -> None:
    env = time_skipping
    now = (await env.get_current_time()).date()
    improved = shift_months(quarter_start(now), 3)  # the quarter the better habits start with (Q)
    generated_on = shift_months(improved, 3)  # the sandbox's "today": its last 91 days are Q
    bank_settings = SandboxSettings()
    user = level_history_user(improved, generated_on, bank_settings.history_months)
    linked_on = datetime.combine(improved + timedelta(days=40), time(12), UTC)  # Q's second month
    await skip_to(env, linked_on)
    clock = datetime.combine(generated_on, time(12), UTC)
    async with serving(create_sandbox_app(bank_settings, clock=lambda: clock)) as url:
        headers = {"PLAID-CLIENT-ID": CLIENT_ID, "PLAID-SECRET": SECRET}
        async with (
            httpx.AsyncClient(base_url=url, headers=headers) as http,
            member_on_worker(
                env, settings, pool, engine, keys, data_converter, zone=UTC_ZONE, plaid_host=url
            ) as member,
        ):
            bank = Sandbox(url, plaid_api(url), http)
            token = await bank.link("user_improver", user_id=user)
            item = await call(bank.api.item_get, ItemGetRequest(access_token=token))
            exchanged = Exchanged(token, item.item.item_id, INSTITUTION)
            linked = await link_connection(pool, keys, member.id, "plaid", exchanged)
            # One sync: the sandbox holds the whole history at once (up to its "today").
            once = FOR_YEARS.total_seconds()
            sync = await env.client.start_workflow(
                BankSyncWorkflow.run,
                BankSyncInput(connection_id=linked.connection_id, user_id=member.id, interval_seconds=once),
                id=bank_sync_workflow_id(linked.connection_id),
                task_queue=member.settings.task_queue,
            )
            try:
                await seen_when_it_happens(env, member, improved)
            finally:
                await sync.terminate(reason="test over")


async def seen_when_it_happens(env: WorkflowEnvironment, member: Member, improved: date) -> None:
    # The first sync is the backfill: the improvement is in the data (Q's first month), but the
    # last complete quarter and those before it are the old habits.
    await member.settled(1)
    months = await member.months()
    fast_food = [
        months[shift_months(improved, n).isoformat()]["spendingByCategory"].get("fast_food", 0) for n in range(-3, 1)
    ]
    assert months[improved.isoformat()]["complete"] and fast_food[3] < 0.5 * sum(fast_food[:3]) / 3
    value, target = await member.progress("fast-food-trimmer")
    assert target == 20 and value < 20
    assert await member.instances("fast-food-trimmer") == []

    # Q's third month begins: the timer evaluates; Q is not complete.
    third = shift_months(improved, 2)
    await skip_to(env, next_window_close(member.id, third - timedelta(days=1), UTC_ZONE) + timedelta(minutes=1))
    await member.settled(2)
    assert await member.instances("fast-food-trimmer") == []

    # Q's last day, in the evening: a sync says data changed. Q is not over.
    end = last_day(third)
    await skip_to(env, datetime.combine(end, time(20), UTC))
    await member.data_changed(DataChanged(first=end, last=end))
    await member.settled(3)
    assert await member.instances("fast-food-trimmer") == []

    # Q closes: the timer's evaluation sees a complete quarter of the better habits.
    await skip_to(env, next_window_close(member.id, end, UTC_ZONE) + timedelta(minutes=1))
    await member.settled(4)
    assert await member.instances("fast-food-trimmer") == [improved.isoformat()]
    assert await member.progress("fast-food-trimmer") == (20, 20)
