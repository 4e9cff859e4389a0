"""Peer statistics end to end: a member's evaluation keeps their inputs while they consent to peer
comparison, an admin's release runs on the real Temporal and is recorded in the privacy ledger
with the loss its measurements' privacy maps give and every value's interval, a withdrawal keeps
the member out of the next release, the budget refuses what would exceed it, and the Schedule
releases only when the yearly budget has accrued enough."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from badges.activities.contact_stats import ContactStatsActivities
from badges.activities.peer_stats import PeerStatsActivities
from badges.config import Settings
from badges.db.consents import delete_scope_data
from badges.db.engine import make_engine
from badges.db.peers import Budget, complete_release, ledger_entry, released_groups, reserve_release
from badges.db.pool import open_pool
from badges.messages.peer_stats import PeerReleaseOutcome, PeerReleaseRequest
from badges.messages.schedules import PEER_STATS_SCHEDULE_ID
from badges.temporal import ensure_schedules
from tests.conftest import fresh_database, make_settings
from tests.integration.test_behaviour import consent
from tests.integration.test_open_banking import link, wait_status
from tests.sandbox.conftest import Sandbox
from tests.support import dev_token, eventually

pytestmark = pytest.mark.usefixtures("worker")
DEMOGRAPHICS = {"postcode": "SW1A", "ageRange": "25-34", "dependants": 1, "salaryBracket": "30-45k"}


async def peer_row(pool: AsyncConnectionPool, user_id: str) -> tuple[Any, ...] | None:
    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT savings_rate, salary_minor, postcode_district, salary_bracket FROM peer_inputs WHERE user_id = %s",
            (user_id,),
        )
        return await cursor.fetchone()


async def consenting_neighbours(pool: AsyncConnectionPool, count: int) -> list[uuid.UUID]:
    """Members whose inputs are already kept (written as an evaluation would), all in SW1A: the
    rest of the population, so the release has a district large enough to publish."""
    expires = datetime.now(UTC) + timedelta(days=30)
    members = [uuid.uuid4() for _ in range(count)]
    async with pool.connection() as db, db.transaction(), db.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO members (id, subject_digest) VALUES (%s, %s)", [(m, m.bytes * 2) for m in members]
        )
        await cursor.executemany(
            "INSERT INTO consents (user_id, scope, purpose, granted_at, expires_at) VALUES (%s, %s, %s, now(), %s)",
            [(m, "peer_comparison", "peers", expires) for m in members],
        )
        await cursor.executemany(
            "INSERT INTO peer_inputs (user_id, seq, computed_at, savings_rate, salary_minor, spending,"
            " postcode_district, salary_bracket) VALUES (%s, 1, now(), %s, %s, %s, 'SW1A', '30-45k')",
            [
                (m, 0.05 + (index % 10) / 100, 200_000 + 1_000 * index, Jsonb({"groceries": 30_000}))
                for index, m in enumerate(members)
            ],
        )
    return members


async def test_an_admin_runs_a_release_and_a_withdrawn_member_is_left_out_of_the_next(
    client: httpx.AsyncClient, sandbox_bank: Sandbox, pool: AsyncConnectionPool
) -> None:
    headers = await dev_token(client, f"peer-{uuid.uuid4()}@example.com")
    await consent(client, headers, "open_banking", "behaviour_tracking", "demographics", "peer_comparison")
    profile = await client.put("/v1/me/profile", json={"demographics": DEMOGRAPHICS}, headers=headers)
    assert profile.status_code == 200, profile.text
    linked = await link(client, headers, sandbox_bank, "user_saver")
    assert linked.status_code == 201, linked.text
    await wait_status(client, headers, "active")
    user_id = (await client.get("/v1/me", headers=headers)).json()["userId"]

    # The evaluation keeps what a release reads, with the groups from the demographics.
    async def kept() -> bool:
        row = await peer_row(pool, user_id)
        return row is not None and row[0] is not None and row[2:] == ("SW1A", "30-45k")

    await eventually(kept, timeout=60)
    # The district's cut is about 840 at the default budget (noise scale 70): 1,200 clear it.
    await consenting_neighbours(pool, 1200)

    # It spends the members' privacy budget: admins only.
    for role in ("operator", "compliance"):
        refused = await dev_token(client, f"{role}-{uuid.uuid4()}", [role])
        assert (await client.post("/v1/admin/peer-stats/releases", headers=refused)).status_code == 403
    assert (await client.post("/v1/admin/peer-stats/releases", headers=headers)).status_code == 403
    admin = await dev_token(client, "admin@example.com", ["admin"])
    first = await client.post("/v1/admin/peer-stats/releases", headers=admin, timeout=120)
    assert first.status_code == 201, first.text
    released = first.json()
    assert released["status"] == "released" and released["groups"] >= 1
    entry = await ledger_entry(pool, uuid.UUID(released["releaseId"]))
    assert entry is not None and entry.status == "released" and entry.requested_by == "operator"
    assert entry.parameters["dimensions"] == ["postcode", "salary_bracket", "dependants", "age_range", "segment"]
    # The loss recorded is what the measurements run account: each query's own privacy map.
    spent = sum(query["epsilon"] for query in entry.parameters["queries"])
    assert entry.epsilon == pytest.approx(released["epsilon"]) == pytest.approx(spent, rel=1e-6)
    assert entry.epsilon <= 1.0 + 1e-9 and entry.delta == 0.0
    groups = await released_groups(pool, entry.release_id)
    assert ("postcode", "district", "SW1A") in {(g.dimension, g.level, g.key) for g in groups}
    assert len(groups) == entry.groups_released == released["groups"]
    sw1a = next(g for g in groups if g.key == "SW1A")
    # Flat statistics, each with its 95 % interval: the badge's percentiles, the quartiles, the
    # mean spending by category (every neighbour spent £300 on groceries).
    for key in ("savingsRate.p95", "savingsRate.p99", "savingsRate.p50", "salary.p50", "spending.groceries.mean"):
        assert key in sw1a.stats and f"{key}.error" in sw1a.stats
    assert sw1a.stats["count.error"] > 0 and 0 < sw1a.stats["savingsRate.p95.error"] < 10
    population = entry.population
    assert population is not None and population >= 1201

    withdrawn = await client.put("/v1/me/consent", json={"scopes": {"peer_comparison": None}}, headers=headers)
    assert withdrawn.status_code == 202

    async def gone() -> bool:
        return await peer_row(pool, user_id) is None

    await eventually(gone)
    second = await client.post("/v1/admin/peer-stats/releases", headers=admin, timeout=120)
    assert second.status_code == 201, second.text
    again = await ledger_entry(pool, uuid.UUID(second.json()["releaseId"]))
    assert again is not None and again.population == population - 1


async def test_a_release_that_would_exceed_the_yearly_budget_is_refused_and_recorded(
    pool: AsyncConnectionPool,
) -> None:
    # Far from today, so the releases of other tests are not in this year's window.
    start = datetime(2101, 1, 1, tzinfo=UTC)
    budget = Budget(per_release=1.0, per_year=3.0)

    async def ask(epsilon: float, at: datetime, release_id: uuid.UUID | None = None) -> Any:
        return await reserve_release(
            pool,
            release_id or uuid.uuid4(),
            epsilon,
            budget,
            requested_by="schedule",
            mechanism="test",
            parameters={},
            now=at,
        )

    for day in range(3):
        assert (await ask(1.0, start + timedelta(days=day))).status == "reserved"
    refused_id = uuid.uuid4()
    refused = await ask(0.5, start + timedelta(days=3), refused_id)
    assert refused.status == "refused" and "yearly privacy budget" in (refused.reason or "")
    entry = await ledger_entry(pool, refused_id)
    assert entry is not None and entry.status == "refused" and entry.reason == refused.reason
    # Asked again (a retried activity), the same answer; a refusal spends nothing.
    assert (await ask(0.5, start + timedelta(days=3), refused_id)).status == "refused"
    assert (await ask(2.0, start + timedelta(days=500))).status == "refused"  # over one release's budget
    # A year after the first, its ε is back.
    assert (await ask(1.0, start + timedelta(days=366))).status == "reserved"


async def ledger_spent(pool: AsyncConnectionPool) -> float:
    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT coalesce(sum(epsilon), 0) FROM privacy_ledger WHERE status IN ('reserved', 'released')"
            " AND requested_at > now() - interval '365 days' AND requested_at <= now()"
        )
        return float((await cursor.fetchone() or (0,))[0])


async def ledger_rows(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as db:
        cursor = await db.execute("SELECT count(*) FROM privacy_ledger")
        return int((await cursor.fetchone() or (0,))[0])


async def spend(pool: AsyncConnectionPool, epsilon: float, at: datetime) -> uuid.UUID:
    """A release in the ledger (of some other kind: every one counts against the pace)."""
    entry = uuid.uuid4()
    async with pool.connection() as db:
        await db.execute(
            "INSERT INTO privacy_ledger (id, requested_at, requested_by, status, mechanism, epsilon, delta)"
            " VALUES (%s, %s, 'operator', 'released', 'another kind of release', %s, 0)",
            (entry, at, epsilon),
        )
    return entry


async def scheduled_run(dev_server: WorkflowEnvironment, system_settings: Settings) -> PeerReleaseOutcome:
    await ensure_schedules(dev_server.client, system_settings)
    schedule = dev_server.client.get_schedule_handle(PEER_STATS_SCHEDULE_ID)
    before = len((await schedule.describe()).info.recent_actions)
    await schedule.trigger()
    started: list[str] = []

    async def ran() -> bool:
        started[:] = [a.action.workflow_id for a in (await schedule.describe()).info.recent_actions]
        return len(started) > before

    await eventually(ran)
    handle = dev_server.client.get_workflow_handle(started[-1], result_type=PeerReleaseOutcome)
    return await handle.result()


async def test_the_schedule_releases_only_when_the_yearly_budget_has_accrued_enough(
    client: httpx.AsyncClient, pool: AsyncConnectionPool, dev_server: WorkflowEnvironment, system_settings: Settings
) -> None:
    # (`client`: the API is up, so the shipped catalogue, with its comparative badge, is loaded.)
    await consenting_neighbours(pool, 30)
    await ensure_schedules(dev_server.client, system_settings)
    described = await dev_server.client.get_schedule_handle(PEER_STATS_SCHEDULE_ID).describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == "PeerStatsReleaseWorkflow"
    assert [spec.every for spec in described.schedule.spec.intervals] == [timedelta(days=1)]
    now = datetime.now(UTC)
    # A ledger that began more than a year ago: a whole year's budget has accrued.
    seeded = [await spend(pool, 0.0, now - timedelta(days=400))]
    try:
        assert await ledger_spent(pool) <= 11.0  # (what the session's other tests released)
        due = await scheduled_run(dev_server, system_settings)
        assert due.status == "released", due
        entry = await ledger_entry(pool, due.release_id)
        assert entry is not None and entry.requested_by == "schedule" and entry.status == "released"

        # Another kind of release spent all but ε = 0.5 of the last 365 days' budget a moment ago:
        # the Schedule's run is not due, records nothing, and says when it will be (a year on).
        moment = datetime.now(UTC) - timedelta(seconds=1)
        seeded.append(await spend(pool, 11.5 - await ledger_spent(pool), moment))
        rows = await ledger_rows(pool)
        waiting = await scheduled_run(dev_server, system_settings)
        assert waiting.status == "not_due" and waiting.next_due is not None, waiting
        # When enough of the year's spending leaves the window: the due release's or the seeded
        # spend's ε, whichever frees enough first (the due one, when it ran minutes earlier).
        assert moment + timedelta(days=364) < waiting.next_due <= moment + timedelta(days=365, minutes=1)
        assert await ledger_rows(pool) == rows and await ledger_entry(pool, waiting.release_id) is None

        # An admin's release now is refused by the yearly limit itself, with the reason, recorded.
        admin = await dev_token(client, "admin@example.com", ["admin"])
        refused = await client.post("/v1/admin/peer-stats/releases", headers=admin, timeout=120)
        assert refused.status_code == 409 and refused.json()["status"] == "refused"
        assert "yearly privacy budget" in refused.json()["reason"]
        assert await ledger_rows(pool) == rows + 1
    finally:
        async with pool.connection() as db:
            await db.execute("DELETE FROM privacy_ledger WHERE id = ANY(%s)", (seeded,))


async def test_ending_a_consent_deletes_what_it_justified_of_the_inputs(pool: AsyncConnectionPool) -> None:
    first, second = await consenting_neighbours(pool, 2)
    async with pool.connection() as db, db.transaction():
        # Demographics end: the member stays in (their figures), in no group but everyone.
        assert await delete_scope_data(db, first, "demographics") == 1
        # Behaviour tracking ends: what the evaluation derived goes, these inputs with it.
        assert await delete_scope_data(db, second, "behaviour_tracking") == 1
    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT user_id, savings_rate, postcode_district, salary_bracket FROM peer_inputs WHERE user_id = ANY(%s)",
            ([first, second],),
        )
        rows = await cursor.fetchall()
    assert [(row[0], row[2], row[3]) for row in rows] == [(first, None, None)] and rows[0][1] is not None


async def test_a_release_reserved_meanwhile_counts_against_one_that_began_before_it(pool: AsyncConnectionPool) -> None:
    """A release takes its `now` before it reads its inputs; one reserved while it read carries a
    later time and still counts (otherwise both could spend the last of the year's budget)."""
    began = datetime(2090, 6, 1, tzinfo=UTC)  # far from the session's other releases
    budget = Budget(per_release=1.0, per_year=1.5)
    later, earlier = uuid.uuid4(), uuid.uuid4()
    try:
        first = await reserve_release(
            pool, later, 1.0, budget, requested_by="operator", mechanism="test", parameters={},
            now=began + timedelta(seconds=30),
        )  # fmt: skip
        assert first.status == "reserved"
        second = await reserve_release(
            pool, earlier, 1.0, budget, requested_by="schedule", mechanism="test", parameters={}, now=began
        )
        assert second.status == "refused" and second.reason is not None and "yearly" in second.reason
    finally:
        async with pool.connection() as db:
            await db.execute("DELETE FROM privacy_ledger WHERE id = ANY(%s)", ([later, earlier],))


async def test_a_retried_release_that_finds_no_one_cancels_the_reservation_an_earlier_attempt_made(
    admin_url: str,
) -> None:
    """An attempt reserved the budget and then failed; its retry finds no consenting member (they
    all withdrew meanwhile). The reservation is cancelled, so the budget is not held for a year;
    the attempt that failed, if it still runs, cannot complete; and a release an earlier attempt
    stored stands however empty the retry finds the members."""
    with fresh_database(admin_url) as url:  # a database of its own: no one in it consents
        settings = make_settings(url, BADGES_PEER_YEARLY_EPSILON="1")
        pool = await open_pool(settings.libpq_url)
        engine = make_engine(settings.database_url)
        try:
            budget = Budget(per_release=1.0, per_year=1.0)
            attempt = ActivityEnvironment()
            releases = PeerStatsActivities(pool, engine, settings)
            contacts = ContactStatsActivities(pool, settings)
            operator = PeerReleaseRequest(requested_by="operator")

            async def reserve(release_id: uuid.UUID) -> str:
                reservation = await reserve_release(
                    pool, release_id, 1.0, budget, requested_by="operator", mechanism="test", parameters={},
                    now=datetime.now(UTC),
                )  # fmt: skip
                return reservation.status

            failed = uuid.uuid4()
            assert await reserve(failed) == "reserved"
            assert await reserve(uuid.uuid4()) == "refused"  # the year's budget is held by it
            retried = await attempt.run(releases.release_peer_stats, failed, operator)
            assert retried.status == "empty" and retried.reason == "no member consents"
            entry = await ledger_entry(pool, failed)
            assert entry is not None and entry.status == "cancelled" and entry.reason == "no member consents"
            with pytest.raises(ValueError, match="not reserved"):  # the failed attempt, still running
                await complete_release(
                    pool, failed, epsilon=1.0, delta=0.0, population=10, parameters={}, groups=[], now=datetime.now(UTC)
                )
            # The budget is free again; the contacts release cancels its own the same way.
            contacts_release = uuid.uuid4()
            assert await reserve(contacts_release) == "reserved"
            empty = await attempt.run(contacts.release_contact_stats, contacts_release, operator)
            assert empty.status == "empty"
            assert (await ledger_entry(pool, contacts_release)).status == "cancelled"  # type: ignore[union-attr]

            # An earlier attempt stored the release, then failed to report it: it stands.
            stored = uuid.uuid4()
            assert await reserve(stored) == "reserved"
            await complete_release(
                pool, stored, epsilon=0.5, delta=0.0, population=10, parameters={}, groups=[], now=datetime.now(UTC)
            )
            outcome = await attempt.run(releases.release_peer_stats, stored, operator)
            assert outcome.status == "released" and outcome.epsilon == 0.5
            assert (await ledger_entry(pool, stored)).status == "released"  # type: ignore[union-attr]
        finally:
            await pool.close()
            await engine.dispose()
