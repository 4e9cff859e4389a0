"""Reads of peer releases end to end (the real API, PostgreSQL and Temporal): a member's own
comparisons (improvement first, standing with its uncertainty, roll-up and suppression said),
read from their own row and the release only; a group's values, trends and the methodology; and
the comparative badges a release awards, once, only past its uncertainty."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from badges.activities import peer_awards as peer_awards_activities
from badges.activities.peer_awards import ERASED, WITHDRAWN, PeerAwardActivities
from badges.config import Settings
from badges.db.catalogue import load_catalogue
from badges.db.erasure import block_member
from badges.db.insights import store_insights
from badges.db.keys import KeyStore, MasterKeys
from badges.db.peer_awards import PeerAward, keep_peer_awards, release_awards
from badges.db.peers import Budget, ReleasedGroup, complete_release, reserve_release
from badges.domain.identity import user_badges_workflow_id
from badges.temporal import connect
from tests.conftest import create_member
from tests.integration.support import erase_in_database
from tests.integration.test_behaviour import consent
from tests.integration.test_peer_stats import consenting_neighbours
from tests.support import dev_token, eventually

pytestmark = pytest.mark.usefixtures("worker")
# Test releases spend next to nothing of the session's yearly budget (other tests run real releases).
TEST_EPSILON = 0.001
ROOMY = Budget(per_release=1.0, per_year=1e9)
ERRORS = {"savingsRate.p50.error": 3.0, "savingsRate.p95.error": 1.5, "savingsRate.p99.error": 1.0}
RATES = {"savingsRate.p50": 0.10, "savingsRate.p95": 0.30, "savingsRate.p99": 0.45}


async def write_release(
    pool: AsyncConnectionPool, groups: Sequence[ReleasedGroup], dimensions: Sequence[str]
) -> uuid.UUID:
    """A release as the release activity stores it (reserved, then completed with its groups)."""
    release_id = uuid.uuid4()
    now = datetime.now(UTC)
    reservation = await reserve_release(
        pool,
        release_id,
        TEST_EPSILON,
        ROOMY,
        requested_by="operator",
        mechanism="test",
        parameters={"dimensions": list(dimensions)},
        now=now,
    )
    assert reservation.status == "reserved", reservation
    await complete_release(
        pool,
        release_id,
        epsilon=TEST_EPSILON,
        delta=0.0,
        population=1000,
        parameters={"dimensions": list(dimensions)},
        groups=groups,
        now=now,
    )
    return release_id


async def keep_inputs(pool: AsyncConnectionPool, user_id: uuid.UUID, **values: Any) -> None:
    """The member's inputs, as their evaluation keeps them."""
    row = {
        "month": date(2026, 10, 1),
        "savings_rate": 0.2,
        "salary_minor": 300_000,
        "spending": {"groceries": 25_000},
        "postcode_district": "SW1A",
        "salary_bracket": "30-45k",
        "dependants": None,
        **values,
    }
    async with pool.connection() as db:
        await db.execute(
            "INSERT INTO peer_inputs (user_id, seq, computed_at, month, savings_rate, salary_minor, spending,"
            " postcode_district, salary_bracket, dependants) VALUES (%s, 1, now(), %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (user_id) DO UPDATE SET month = excluded.month, savings_rate = excluded.savings_rate,"
            " spending = excluded.spending, postcode_district = excluded.postcode_district",
            (
                user_id,
                row["month"],
                row["savings_rate"],
                row["salary_minor"],
                Jsonb(row["spending"]),
                row["postcode_district"],
                row["salary_bracket"],
                row["dependants"],
            ),
        )


async def member(client: httpx.AsyncClient, *scopes: str) -> tuple[dict[str, str], uuid.UUID]:
    headers = await dev_token(client, f"compare-{uuid.uuid4()}@example.com")
    if scopes:
        await consent(client, headers, *scopes)
    user_id = uuid.UUID((await client.get("/v1/me", headers=headers)).json()["userId"])
    return headers, user_id


class Statements:
    """Every statement the API's comparison route sends to PostgreSQL (with its parameters)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Statements:
    import inspect

    captured = Statements()
    original = psycopg.AsyncCursor.execute

    async def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if any(frame.filename.endswith("api/routes/comparisons.py") for frame in inspect.stack(0)[:12]):
            captured.seen.append((str(query), params))
        return await original(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", execute)
    return captured


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in plan_nodes(child))]


async def test_a_member_sees_their_improvement_first_and_their_standing_with_its_uncertainty(
    client: httpx.AsyncClient, pool: AsyncConnectionPool, keys: KeyStore, statements: Statements
) -> None:
    # (No `behaviour_tracking` here: its evaluation would replace what the test keeps.)
    headers, user_id = await member(client, "peer_comparison")
    # Others' rows are there to be read, and must not be.
    await consenting_neighbours(pool, 50)
    await keep_inputs(pool, user_id)
    document = {
        "months": [
            {"month": "2026-09-01", "complete": True, "savingsRate": 0.12, "spendingByCategory": {"groceries": 30_000}},
            {"month": "2026-10-01", "complete": True, "savingsRate": 0.2, "spendingByCategory": {"groceries": 25_000}},
        ]
    }
    assert await store_insights(pool, keys, user_id, 1, datetime.now(UTC), document)
    # The district is not published (too small), its area is; salary brackets are; dependants:
    # nothing at all (the member has none, and everyone was too few).
    release_id = await write_release(
        pool,
        [
            ReleasedGroup("postcode", "area", "SW", 1_200, {**RATES, **ERRORS, "salary.p50": 260_000.0}),
            ReleasedGroup(
                "salary_bracket",
                "salary_bracket",
                "30-45k",
                900,
                {
                    **RATES,
                    **ERRORS,
                    "spending.groceries.mean": 30_000.0,
                    "spending.groceries.mean.error": 1_000.0,
                },
            ),
        ],
        ["postcode", "salary_bracket", "dependants"],
    )

    answer = await client.get("/v1/me/comparisons", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ready" and body["release"]["releaseId"] == str(release_id)
    assert body["release"]["epsilon"] == pytest.approx(TEST_EPSILON) and body["release"]["delta"] == 0
    assert body["month"] == "2026-10-01"
    groups = {group["dimension"]: group for group in body["groups"]}
    postcode = groups["postcode"]
    assert postcode["status"] == "compared"
    assert postcode["group"] == {
        "dimension": "postcode",
        "level": "area",
        "key": "SW",
        "noisySize": 1_200,
        "rolledUpFrom": "district:SW1A",
    }
    rate = next(m for m in postcode["metrics"] if m["metric"] == "savingsRate")
    # Improvement first, then the standing: between the median (0.10) and p95 (0.30).
    assert list(rate).index("improvement") < list(rate).index("standing")
    assert rate["yourValue"] == 0.2
    assert rate["improvement"]["previousMonth"] == "2026-09-01" and rate["improvement"]["verdict"] == "better"
    assert rate["improvement"]["change"] == pytest.approx(0.08)
    standing = rate["standing"]
    assert standing["percentile"] == pytest.approx(72.5) and standing["uncertaintyKnown"]
    assert 47 <= standing["low"] < 72.5 < standing["high"] <= 96.5
    assert rate["summary"].startswith("Your savings rate is 20.0 %, up from 12.0 % in September.")
    assert rate["released"]["p95"] == 0.3 and rate["errors"]["p95"] == 1.5
    groceries = next(m for m in groups["salary_bracket"]["metrics"] if m["metric"] == "spending.groceries")
    assert groceries["comparedToMean"] == "below" and groceries["difference"] == -5_000
    assert groceries["improvement"]["change"] == -5_000 and groceries["improvement"]["verdict"] is None
    assert groups["dependants"]["status"] == "not-published" and "demographics" in groups["dependants"]["reason"]

    # Read: the member's own row (by its key) and the release; never another member's row.
    reading = [(query, params) for query, params in statements.seen if "peer_inputs" in query]
    assert reading, statements.seen
    async with pool.connection() as db:
        for query, params in reading:
            assert params is not None and user_id in (params.values() if isinstance(params, dict) else params)
            cursor = await db.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", params)
            plan = (await cursor.fetchone())[0]  # type: ignore[index]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            scans = [node for node in plan_nodes(plan[0]["Plan"]) if node.get("Relation Name") == "peer_inputs"]
            assert scans, plan
            for scan in scans:
                condition = scan.get("Index Cond", "") + scan.get("Filter", "")
                assert "user_id" in condition and scan["Actual Rows"] <= 1, scan
        cursor = await db.execute(
            "SELECT count(*) FROM audit_log WHERE subject = %s AND action = 'read.comparisons'"
            " AND resource = '/v1/me/comparisons'",
            (user_id,),
        )
        assert (await cursor.fetchone()) == (1,)

    # The group's released values, and a district that rolled up.
    stats = await client.get(
        "/v1/peer-stats", params={"dimension": "postcode", "value": "SW", "metric": "savingsRate"}, headers=headers
    )
    assert stats.status_code == 200, stats.text
    assert stats.json()["values"] == {"p50": 0.1, "p95": 0.3, "p99": 0.45}
    assert stats.json()["errors"]["p99"] == 1.0 and stats.json()["group"]["noisySize"] == 1_200
    assert stats.json()["release"]["releaseId"] == str(release_id)
    rolled = await client.get(
        "/v1/peer-stats", params={"dimension": "postcode", "value": "SW1A", "metric": "salary"}, headers=headers
    )
    assert rolled.status_code == 404 and rolled.json()["rolledUpTo"] == {"level": "area", "key": "SW"}
    for bad in ({"dimension": "shoe_size", "metric": "salary"}, {"dimension": "postcode", "metric": "height"}):
        refused = await client.get("/v1/peer-stats", params={"value": "SW", **bad}, headers=headers)
        assert refused.status_code == 400, refused.text
    # Trends: the group over the last releases, oldest first.
    later = await write_release(
        pool, [ReleasedGroup("postcode", "area", "SW", 1_300, {**RATES, "savingsRate.p95": 0.31})], ["postcode"]
    )
    trend = await client.get(
        "/v1/peer-stats/trends",
        params={"dimension": "postcode", "value": "SW", "metric": "savingsRate", "releases": 2},
        headers=headers,
    )
    assert trend.status_code == 200, trend.text
    points = trend.json()["points"]
    assert [p["release"]["releaseId"] for p in points] == [str(release_id), str(later)]
    assert [p["values"]["p95"] for p in points] == [0.3, 0.31]
    # The later release has no errors: values shown, uncertainty unknown.
    older = await client.get("/v1/me/comparisons", headers=headers)
    rate = next(m for g in older.json()["groups"] if g["dimension"] == "postcode" for m in g["metrics"])
    assert rate["standing"]["uncertaintyKnown"] is False and rate["standing"]["low"] is None


async def test_without_consent_or_figures_the_member_is_told_which_and_what_to_do(
    client: httpx.AsyncClient,
) -> None:
    headers, _ = await member(client)
    refused = await client.get("/v1/me/comparisons", headers=headers)
    assert refused.status_code == 403 and "peer_comparison" in refused.json()["detail"]
    headers, _ = await member(client, "peer_comparison")
    waiting = await client.get("/v1/me/comparisons", headers=headers)
    assert waiting.status_code == 200 and waiting.json()["status"] == "waiting"
    assert waiting.json()["whatToDo"]
    assert (
        await client.get("/v1/peer-stats/trends", params={"dimension": "postcode", "value": "SW", "metric": "salary"})
    ).status_code == 401


async def test_the_methodology_is_public_and_says_the_settings_in_force(
    client: httpx.AsyncClient, system_settings: Settings
) -> None:
    answer = await client.get("/v1/peer-stats/methodology")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["settings"]["yearlyEpsilon"] == system_settings.peer_yearly_epsilon
    # The quartiles everywhere, and the shipped catalogue's top-saver targets where it compares.
    assert body["settings"]["percentiles"]["postcode"] == [25, 50, 75, 95, 99]
    assert body["settings"]["percentiles"]["dependants"] == [25, 50, 75]
    assert body["settings"]["targets"] == {"postcode": [95, 99], "salary_bracket": [95, 99]}
    assert f"ε = {system_settings.peer_yearly_epsilon:g} per member" in body["text"]
    assert "district → area → region → all" in body["text"]


# --- comparative badges --------------------------------------------------------------------


@pytest.fixture
async def award_step(
    pool: AsyncConnectionPool,
    engine: AsyncEngine,
    keys: KeyStore,
    dev_server: WorkflowEnvironment,
    system_settings: Settings,
) -> AsyncIterator[Any]:
    activities = PeerAwardActivities(pool, engine, dev_server.client, system_settings, keys)

    async def run(release_id: uuid.UUID, heartbeat_details: Sequence[Any] = ()) -> Any:
        """The step; `heartbeat_details`: what the attempt before it heartbeated last."""
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, heartbeat_details=heartbeat_details)
        return await env.run(activities.award_comparative_badges, release_id)

    yield run


async def consenting(
    pool: AsyncConnectionPool, engine: AsyncEngine, keys: KeyStore, rate: float, *, active: bool = True
) -> uuid.UUID:
    user_id = await create_member(engine, keys)
    async with pool.connection() as db:
        await db.execute(
            "INSERT INTO consents (user_id, scope, purpose, granted_at, expires_at, revoked_at)"
            " VALUES (%s, 'peer_comparison', 'peers', now(), %s, %s)",
            (user_id, datetime.now(UTC) + timedelta(days=30), None if active else datetime.now(UTC)),
        )
    await keep_inputs(pool, user_id, savings_rate=rate, postcode_district="SW9", salary_bracket=None)
    return user_id


async def awards_of(pool: AsyncConnectionPool, user_id: uuid.UUID) -> list[str]:
    async with pool.connection() as db:
        cursor = await db.execute(
            "SELECT instance FROM awards WHERE user_id = %s AND badge_id = 'top-saver' ORDER BY instance", (user_id,)
        )
        return [row[0] for row in await cursor.fetchall()]


async def test_a_release_awards_top_saver_once_and_only_past_its_uncertainty(
    client: httpx.AsyncClient,
    pool: AsyncConnectionPool,
    engine: AsyncEngine,
    keys: KeyStore,
    dev_server: WorkflowEnvironment,
    award_step: Any,
) -> None:
    # (`client`: the API is up, so the shipped catalogue, with top-saver, is loaded.)
    inside = await consenting(pool, engine, keys, 0.32)  # past p95 (0.30), inside its band
    clearly = await consenting(pool, engine, keys, 0.90)  # past p99 by far more than its error
    withdrawn = await consenting(pool, engine, keys, 0.95, active=False)
    release_id = await write_release(
        pool, [ReleasedGroup("postcode", "district", "SW9", 2_000, {**RATES, **ERRORS})], ["postcode"]
    )
    first = await award_step(release_id)
    assert first.sent >= 1
    expected = [f"p95-{release_id}", f"p99-{release_id}"]

    async def awarded() -> bool:
        return await awards_of(pool, clearly) == expected

    await eventually(awarded, timeout=30)
    kept = {record.award.user_id: record for record in await release_awards(pool, release_id)}
    assert set(kept) == {clearly} and kept[clearly].status == "sent"
    assert kept[clearly].award.decided["low"] >= 99
    assert await awards_of(pool, inside) == [] and await awards_of(pool, withdrawn) == []

    # The step again (a retry): nothing new decided, nothing sent.
    again = await award_step(release_id)
    assert again.sent == 0
    # A step that failed after signalling but before marking: sent again, awarded once.
    async with pool.connection() as db:
        await db.execute("UPDATE peer_awards SET sent_at = NULL WHERE release_id = %s", (release_id,))
    assert (await award_step(release_id)).sent == 1
    handle = dev_server.client.get_workflow_handle(user_badges_workflow_id(clearly))

    async def both_applied() -> bool:
        events = [event async for event in handle.fetch_history_events()]
        signalled = [
            index
            for index, event in enumerate(events)
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and event.workflow_execution_signaled_event_attributes.signal_name == "comparative"
        ]
        done = [
            index
            for index, event in enumerate(events)
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        ]
        return len(signalled) == 2 and any(index > signalled[-1] for index in done)

    await eventually(both_applied, timeout=30)
    assert await awards_of(pool, clearly) == expected


async def test_a_real_release_is_read_by_comparisons_and_its_award_step_runs(
    client: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    headers, user_id = await member(client, "peer_comparison")
    await keep_inputs(pool, user_id, savings_rate=0.12)
    await consenting_neighbours(pool, 1500)  # SW1A, 30-45k: well past a district's cut (about 840)
    admin = await dev_token(client, f"admin-{uuid.uuid4()}", ["admin"])
    released = await client.post("/v1/admin/peer-stats/releases", headers=admin, timeout=180)
    assert released.status_code == 201, released.text
    release_id = released.json()["releaseId"]

    answer = await client.get("/v1/me/comparisons", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ready" and body["release"]["releaseId"] == release_id
    assert body["release"]["epsilon"] == pytest.approx(released.json()["epsilon"])
    postcode = next(group for group in body["groups"] if group["dimension"] == "postcode")
    assert postcode["status"] == "compared" and postcode["group"]["noisySize"] > 0
    rate = next(m for m in postcode["metrics"] if m["metric"] == "savingsRate")
    assert rate["yourValue"] == 0.12 and rate["standing"] is not None
    # Known exactly when the release gave every percentile's error.
    assert rate["standing"]["uncertaintyKnown"] == all(error is not None for error in rate["errors"].values())
    # The award step ran after the release: whatever it awarded cleared the uncertainty.
    for record in await release_awards(pool, uuid.UUID(release_id)):
        assert record.status == "sent" and record.award.decided["low"] >= 95, record


async def decided(pool: AsyncConnectionPool, engine: AsyncEngine, release_id: uuid.UUID, *members: uuid.UUID) -> None:
    """Top-saver awards of the release for `members`, as the step keeps them once it has decided."""
    revision, catalogue = await load_catalogue(engine)
    version = next(badge.version for badge in catalogue if badge.badge_id == "top-saver")
    awards = [
        PeerAward(
            member, "top-saver", version, [f"p99-{release_id}"], {"percentile": 99.5, "catalogueRevision": revision}
        )
        for member in members
    ]
    await keep_peer_awards(pool, release_id, awards, datetime.now(UTC))


async def has_workflow(dev_server: WorkflowEnvironment, member: uuid.UUID) -> bool:
    try:
        await dev_server.client.get_workflow_handle(user_badges_workflow_id(member)).describe()
    except RPCError as error:
        assert error.status == RPCStatusCode.NOT_FOUND
        return False
    return True


async def test_a_member_who_withdrew_or_began_erasure_after_the_release_decided_gets_no_signal(
    client: httpx.AsyncClient,  # the API is up: the shipped catalogue, with top-saver, is loaded
    pool: AsyncConnectionPool,
    engine: AsyncEngine,
    keys: KeyStore,
    dev_server: WorkflowEnvironment,
    award_step: Any,
) -> None:
    # (Rates below any threshold: only the awards kept here are theirs.)
    stays, withdrew, erasing = [await consenting(pool, engine, keys, 0.01) for _ in range(3)]
    release_id = await write_release(
        pool, [ReleasedGroup("postcode", "district", "SW9", 2_000, {**RATES, **ERRORS})], ["postcode"]
    )
    await decided(pool, engine, release_id, stays, withdrew, erasing)
    # After the release decided: one withdraws consent, another's erasure begins (their tokens
    # are refused; their rows and workflows are not gone yet).
    async with pool.connection() as db, db.transaction():
        await db.execute(
            "UPDATE consents SET revoked_at = now() WHERE user_id = %s AND scope = 'peer_comparison'", (withdrew,)
        )
        await block_member(db, erasing)

    outcome = await award_step(release_id, [3, None, None])  # decided: straight to sending
    assert (outcome.sent, outcome.dropped) == (1, 2)
    kept = {record.award.user_id: record for record in await release_awards(pool, release_id)}
    assert kept[stays].status == "sent"
    assert (kept[withdrew].status, kept[withdrew].reason) == ("dropped", WITHDRAWN)
    assert (kept[erasing].status, kept[erasing].reason) == ("dropped", ERASED)
    # Only the member who still consents has a badge workflow: none was started for the others.
    assert [await has_workflow(dev_server, m) for m in (stays, withdrew, erasing)] == [True, False, False]
    # Dropped is not unsent: the step again sends nothing.
    again = await award_step(release_id, [3, None, None])
    assert (again.sent, again.dropped) == (0, 0)


async def test_a_workflow_started_as_the_members_erasure_ran_is_ended(
    client: httpx.AsyncClient,
    pool: AsyncConnectionPool,
    engine: AsyncEngine,
    dev_server: WorkflowEnvironment,
    system_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The member's erasure runs whole between the step's check and its signal, in another
    process: this one still caches the key, so the signal-with-start starts a workflow. The step
    ends it (the erasure's sweeps ran before it), and the member's erasure stands."""
    worker_keys = KeyStore(engine, MasterKeys(system_settings.parsed_master_keys))
    member = await consenting(pool, engine, worker_keys, 0.01)
    await worker_keys.live_key(str(member))
    release_id = await write_release(
        pool, [ReleasedGroup("postcode", "district", "SW9", 2_000, {**RATES, **ERRORS})], ["postcode"]
    )
    await decided(pool, engine, release_id, member)
    signal = peer_awards_activities.record_comparative_results

    async def erased_just_before(client: Any, settings: Settings, member_id: uuid.UUID, results: Any) -> None:
        if member_id == member:
            await erase_in_database(pool, member)
        await signal(client, settings, member_id, results)

    monkeypatch.setattr(peer_awards_activities, "record_comparative_results", erased_just_before)
    temporal = await connect(system_settings, worker_keys)
    step = PeerAwardActivities(pool, engine, temporal, system_settings, worker_keys)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_details=[1, None, None])
    outcome = await env.run(step.award_comparative_badges, release_id)
    assert (outcome.sent, outcome.dropped) == (0, 1)
    started = await dev_server.client.get_workflow_handle(user_badges_workflow_id(member)).describe()
    assert started.status == WorkflowExecutionStatus.TERMINATED
    assert await release_awards(pool, release_id) == []  # gone with the member


async def test_a_retried_step_resumes_after_the_last_page_it_handed_over(
    client: httpx.AsyncClient,
    pool: AsyncConnectionPool,
    engine: AsyncEngine,
    keys: KeyStore,
    dev_server: WorkflowEnvironment,
    award_step: Any,
) -> None:
    members = sorted([await consenting(pool, engine, keys, 0.01) for _ in range(3)])
    release_id = await write_release(
        pool, [ReleasedGroup("postcode", "district", "SW9", 2_000, {**RATES, **ERRORS})], ["postcode"]
    )
    await decided(pool, engine, release_id, *members)
    # Past p99 by far: deciding again would award them. The attempt before had decided already.
    undecided = await consenting(pool, engine, keys, 0.90)
    # It handed over the first member's page (and marked it), heartbeated, then failed.
    async with pool.connection() as db:
        await db.execute(
            "UPDATE peer_awards SET sent_at = now() WHERE release_id = %s AND user_id = %s", (release_id, members[0])
        )
    outcome = await award_step(release_id, [3, str(members[0]), "top-saver", 1, 0])
    assert (outcome.members, outcome.sent, outcome.dropped) == (3, 2, 0)
    assert [await has_workflow(dev_server, m) for m in members] == [False, True, True]
    records = await release_awards(pool, release_id)
    assert {record.status for record in records} == {"sent"}
    assert undecided not in {record.award.user_id for record in records}  # not decided again
