"""Re-evaluation and erasure: a page of members read before a member's erasure still names them.
The re-evaluation completes, re-evaluates everyone else, and leaves no workflow for the erased
member, whether this worker process forgot the member's key or still caches it, and whether the
erasure came before the page was signalled or while it was. A retried page resumes after the
last member it reached; worker processes forget an erased member's keys at the erasure's notice."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from badges.activities import reevaluation as reevaluation_activities
from badges.activities.reevaluation import ReevaluationActivities
from badges.config import Settings
from badges.db import progress
from badges.db.erasure import destroy_keys
from badges.db.keys import KeyStore, KeyUnavailableError, MasterKeys
from badges.domain.identity import user_badges_workflow_id
from badges.messages.reevaluation import MemberPage, ReevaluationInput, ReevaluationProgress, ReevaluationSignals
from badges.messages.user_badges import ReevaluationRequest
from badges.temporal import connect, running_member_workflows, start_erasure
from badges.workers.main import forget_erased_keys
from badges.workflows.reevaluation import ReevaluationWorkflow
from tests.conftest import create_member
from tests.integration.support import erase_in_database
from tests.integration.test_badge_engine import admin, count_badge, my_badge, send
from tests.support import dev_token, eventually

pytestmark = pytest.mark.usefixtures("worker")


@pytest.mark.parametrize("cached_key", [False, True], ids=["key-forgotten", "key-cached"])
async def test_a_member_erased_after_the_page_was_read_is_skipped_and_gets_no_workflow(
    client: httpx.AsyncClient,
    dev_server: WorkflowEnvironment,
    engine: AsyncEngine,
    keys: KeyStore,
    system_settings: Settings,
    cached_key: bool,
) -> None:
    admin_headers = await admin(client)
    campaign = uuid.uuid4().hex
    badge_id = f"camp-{campaign[:12]}"
    put = await client.put(f"/v1/admin/badges/{badge_id}", json=count_badge(campaign, 3), headers=admin_headers)
    assert put.status_code == 201

    # Four members with progress 2 of 3 on the badge.
    members: dict[uuid.UUID, dict[str, str]] = {}
    for _ in range(4):
        sub = f"m-{uuid.uuid4()}"
        headers = await dev_token(client, sub)
        await send(client, headers, sub, campaign, 2)
        members[uuid.UUID((await client.get("/v1/me", headers=headers)).json()["userId"])] = headers
    for headers in members.values():
        await eventually(lambda h=headers: _progress_is(client, h, badge_id, 2))  # type: ignore[misc]

    # The page is read before the erasure: it names the member about to be erased, between others.
    page = await progress.members_with_progress(engine, badge_id, None, 500)
    assert set(members) <= set(page)
    erased = sorted(members)[1]
    # Another worker process, which handled the member before, still caches their key.
    worker_keys = KeyStore(engine, MasterKeys(system_settings.parsed_master_keys)) if cached_key else keys
    await worker_keys.live_key(str(erased))
    temporal = await connect(system_settings, worker_keys)

    await (await start_erasure(dev_server.client, system_settings, erased)).result()
    ended = await dev_server.client.get_workflow_handle(user_badges_workflow_id(erased)).describe()
    assert ended.status == WorkflowExecutionStatus.TERMINATED

    # Version 2 asks for 2, which every remaining member has.
    put = await client.put(f"/v1/admin/badges/{badge_id}", json=count_badge(campaign, 2), headers=admin_headers)
    assert put.status_code == 201 and put.json()["version"] == 2
    await asyncio.sleep(1.5)  # past the API's catalogue cache
    revision = (await client.get("/v1/badges", headers=members[sorted(members)[0]])).json()["revision"]

    @activity.defn(name="members_with_progress")
    async def page_read_before_the_erasure(badge_id: str, after: uuid.UUID | None, limit: int) -> MemberPage:
        return MemberPage(member_ids=page if after is None else [])

    activities = ReevaluationActivities(engine, temporal, system_settings, worker_keys)
    task_queue = f"reevaluation-{uuid.uuid4()}"
    async with Worker(
        dev_server.client,
        task_queue=task_queue,
        workflows=[ReevaluationWorkflow],
        activities=[page_read_before_the_erasure, activities.signal_reevaluation],
    ):
        handle = await dev_server.client.start_workflow(
            ReevaluationWorkflow.run,
            ReevaluationInput(badge_id=badge_id, version=2, catalogue_revision=revision),
            id=f"catalogue/reevaluate/{badge_id}/v2",
            task_queue=task_queue,
        )
        # It completes: the erased member's unavailable key does not fail the page for ever.
        outcome = await asyncio.wait_for(handle.result(), 30)
    assert isinstance(outcome, ReevaluationProgress) and outcome.done

    # Everyone else is re-evaluated: version 2 awards them.
    for member_id, headers in members.items():
        if member_id != erased:
            await eventually(lambda h=headers: _awarded(client, h, badge_id))  # type: ignore[misc]

    # No workflow was started for the erased member: the last run is the one the erasure ended.
    await asyncio.sleep(1)
    latest = await dev_server.client.get_workflow_handle(user_badges_workflow_id(erased)).describe()
    assert (latest.run_id, latest.status) == (ended.run_id, WorkflowExecutionStatus.TERMINATED)
    assert await running_member_workflows(dev_server.client, erased) == set()


async def test_a_retried_page_resumes_after_the_last_member_signalled_and_skips_an_erased_one(
    dev_server: WorkflowEnvironment,
    engine: AsyncEngine,
    pool: AsyncConnectionPool,
    keys: KeyStore,
    system_settings: Settings,
) -> None:
    page = sorted([await create_member(engine, keys) for _ in range(4)])
    erased = page[2]
    await keys.live_key(str(erased))
    await erase_in_database(pool, erased)
    keys.forget(str(erased))

    # The attempt before signalled the first member, then failed.
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_details=[0])
    beats: list[int] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    activities = ReevaluationActivities(engine, dev_server.client, system_settings, keys)
    signals = ReevaluationSignals(member_ids=page, badge_id="calculator-explorer", catalogue_revision=1)
    # The erased member does not fail the page: it completes, and covers every later member.
    await env.run(activities.signal_reevaluation, signals)
    assert beats == [1, 2, 3]

    async def has_workflow(member_id: uuid.UUID) -> bool:
        try:
            await dev_server.client.get_workflow_handle(user_badges_workflow_id(member_id)).describe()
        except RPCError as error:
            assert error.status == RPCStatusCode.NOT_FOUND
            return False
        return True

    # The first member, signalled by the attempt before, is not signalled again; the erased
    # member gets no workflow; the others do.
    assert [await has_workflow(member_id) for member_id in page] == [False, True, False, True]


async def test_a_workflow_started_as_the_members_erasure_ran_is_ended(
    dev_server: WorkflowEnvironment,
    engine: AsyncEngine,
    pool: AsyncConnectionPool,
    system_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The erasure runs between the check and the signal, in another process: this one still
    caches the key, so the signal-with-start succeeds. The page then ends that workflow."""
    worker_keys = KeyStore(engine, MasterKeys(system_settings.parsed_master_keys))
    page = sorted([await create_member(engine, worker_keys) for _ in range(2)])
    erased = page[1]
    await worker_keys.live_key(str(erased))
    signal = reevaluation_activities.request_reevaluation

    async def erased_just_before(
        client: Client, settings: Settings, member_id: uuid.UUID, request: ReevaluationRequest
    ) -> None:
        if member_id == erased:
            await erase_in_database(pool, erased)
        await signal(client, settings, member_id, request)

    monkeypatch.setattr(reevaluation_activities, "request_reevaluation", erased_just_before)
    temporal = await connect(system_settings, worker_keys)
    activities = ReevaluationActivities(engine, temporal, system_settings, worker_keys)
    signals = ReevaluationSignals(member_ids=page, badge_id="calculator-explorer", catalogue_revision=1)
    await ActivityEnvironment().run(activities.signal_reevaluation, signals)

    started = await dev_server.client.get_workflow_handle(user_badges_workflow_id(erased)).describe()
    assert started.status == WorkflowExecutionStatus.TERMINATED
    kept = await dev_server.client.get_workflow_handle(user_badges_workflow_id(page[0])).describe()
    assert kept.status == WorkflowExecutionStatus.RUNNING


async def test_a_page_that_fails_midway_is_retried_from_where_it_failed(
    dev_server: WorkflowEnvironment,
    engine: AsyncEngine,
    keys: KeyStore,
    system_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real retry, through Temporal: the attempt that failed on the fourth member (Temporal
    briefly unreachable) heartbeat its position, and the next attempt resumes there, so every
    member is asked exactly once."""
    page = sorted([await create_member(engine, keys) for _ in range(5)])
    signal = reevaluation_activities.request_reevaluation
    failed: list[uuid.UUID] = []

    async def unreachable_once(
        client: Client, settings: Settings, member_id: uuid.UUID, request: ReevaluationRequest
    ) -> None:
        if member_id == page[3] and not failed:
            failed.append(member_id)
            raise RPCError("Temporal is not serving", RPCStatusCode.UNAVAILABLE, b"")
        await signal(client, settings, member_id, request)

    monkeypatch.setattr(reevaluation_activities, "request_reevaluation", unreachable_once)

    @activity.defn(name="members_with_progress")
    async def one_page(badge_id: str, after: uuid.UUID | None, limit: int) -> MemberPage:
        return MemberPage(member_ids=page if after is None else [])

    activities = ReevaluationActivities(engine, dev_server.client, system_settings, keys)
    task_queue = f"reevaluation-{uuid.uuid4()}"
    async with Worker(
        dev_server.client,
        task_queue=task_queue,
        workflows=[ReevaluationWorkflow],
        activities=[one_page, activities.signal_reevaluation],
    ):
        handle = await dev_server.client.start_workflow(
            ReevaluationWorkflow.run,
            ReevaluationInput(badge_id="calculator-explorer", version=1, catalogue_revision=1),
            id=f"catalogue/reevaluate/retry-{uuid.uuid4()}/v1",
            task_queue=task_queue,
        )
        await asyncio.wait_for(handle.result(), 30)
    assert failed == [page[3]]

    async def reevaluations(member_id: uuid.UUID) -> int:
        history = await dev_server.client.get_workflow_handle(user_badges_workflow_id(member_id)).fetch_history()
        signalled = (event.workflow_execution_signaled_event_attributes for event in history.events)
        return sum(1 for attributes in signalled if attributes.signal_name == "reevaluate")

    assert [await reevaluations(member_id) for member_id in page] == [1, 1, 1, 1, 1]


async def test_a_worker_forgets_an_erased_members_key_as_soon_as_the_erasure_is_announced(
    engine: AsyncEngine, pool: AsyncConnectionPool, keys: KeyStore, system_settings: Settings
) -> None:
    member = await create_member(engine, keys)
    worker_keys = KeyStore(engine, MasterKeys(system_settings.parsed_master_keys))
    listener = asyncio.create_task(forget_erased_keys(system_settings.libpq_url, worker_keys))
    try:
        await asyncio.sleep(1)  # listening
        await worker_keys.live_key(str(member))  # cached from here on
        async with pool.connection() as connection, connection.transaction():
            await destroy_keys(connection, str(member))  # by another process

        async def forgotten() -> bool:
            try:
                await worker_keys.live_key(str(member))
            except KeyUnavailableError:
                return True
            return False

        await eventually(forgotten, timeout=5)
    finally:
        listener.cancel()


async def _progress_is(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str, value: int) -> bool:
    return bool((await my_badge(client, headers, badge_id))["progress"] == value)


async def _awarded(client: httpx.AsyncClient, headers: dict[str, str], badge_id: str) -> bool:
    return bool((await my_badge(client, headers, badge_id))["awarded"])
