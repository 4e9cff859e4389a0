"""BankSyncWorkflow on the time-skipping server against the sandbox bank: syncs on its
schedule, a provider that keeps failing opens the circuit breaker (`degraded`), one success
closes it, and the whole history replays."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
from plaid.model.item_get_request import ItemGetRequest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowHandle
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from badges.banking.sandbox import SandboxSettings, create_sandbox_app
from badges.config import Settings
from badges.db.banking import link_connection
from badges.db.keys import KeyStore
from badges.domain.banking import Exchanged
from badges.domain.identity import bank_sync_workflow_id
from badges.messages.bank_sync import BankSyncInput
from badges.workflows.bank_sync import BankSyncWorkflow
from tests.conftest import create_member
from tests.integration.support import running_worker
from tests.sandbox.conftest import CLIENT_ID, INSTITUTION, SECRET, Sandbox, call, plaid_api
from tests.support import eventually, serving


async def status_of(pool: AsyncConnectionPool, connection_id: uuid.UUID) -> str:
    async with pool.connection() as db:
        row = await (await db.execute("SELECT status FROM bank_connections WHERE id = %s", (connection_id,))).fetchone()
    return str(row[0]) if row else "gone"


async def test_a_failing_provider_degrades_the_connection_and_one_success_restores_it(
    time_skipping: WorkflowEnvironment,
    settings: Settings,
    engine: AsyncEngine,
    keys: KeyStore,
    pool: AsyncConnectionPool,
    data_converter: DataConverter,
) -> None:
    member = await create_member(engine, keys)
    async with pool.connection() as db:
        await db.execute(
            "INSERT INTO consents (user_id, scope, purpose, granted_at, expires_at)"
            " VALUES (%s, 'open_banking', 'test', now(), now() + interval '30 days')",
            (member,),
        )
    async with serving(create_sandbox_app(SandboxSettings())) as url:
        headers = {"PLAID-CLIENT-ID": CLIENT_ID, "PLAID-SECRET": SECRET}
        async with httpx.AsyncClient(base_url=url, headers=headers) as http:
            bank = Sandbox(url, plaid_api(url), http)
            token = await bank.link("user_saver")
            item = await call(bank.api.item_get, ItemGetRequest(access_token=token))
            exchanged = Exchanged(token, item.item.item_id, INSTITUTION)
            linked = await link_connection(pool, keys, member, "plaid", exchanged)
            connection_id = linked.connection_id
            async with running_worker(time_skipping, settings, pool, engine, keys, plaid_host=url) as task_queue:
                handle = await time_skipping.client.start_workflow(
                    BankSyncWorkflow.run,
                    BankSyncInput(connection_id=connection_id, user_id=member),
                    id=bank_sync_workflow_id(connection_id),
                    task_queue=task_queue,
                )

                async def status_is(wanted: str) -> bool:
                    return await status_of(pool, connection_id) == wanted

                try:
                    await exercise(time_skipping, bank, handle, status_is)
                except BaseException:
                    # Never leave it running on the shared time-skipping server without a worker.
                    await handle.terminate(reason="test failed")
                    raise
                history = await handle.fetch_history()
    await Replayer(workflows=[BankSyncWorkflow], data_converter=data_converter).replay_workflow(history)
    assert await status_of(pool, connection_id) == "gone"


async def exercise(
    env: WorkflowEnvironment,
    bank: Sandbox,
    handle: WorkflowHandle[Any, Any],
    status_is: Callable[[str], Awaitable[bool]],
) -> None:
    await eventually(lambda: status_is("active"))
    await bank.custom("/sandbox/faults", endpoint="/transactions/sync", kind="server_error", count=None)

    async def degraded() -> bool:
        await env.sleep(timedelta(hours=2))  # past the schedule and each cool-down
        return await status_is("degraded")

    await eventually(degraded, timeout=60)
    state = await handle.query(BankSyncWorkflow.state)
    assert state.status == "degraded" and state.failures >= 3

    await bank.http.delete("/sandbox/faults")
    # A webhook during the cool-down does not cut it short (bursts must not hammer the provider) ...
    await handle.signal(BankSyncWorkflow.sync_now)
    assert (await handle.query(BankSyncWorkflow.state)).syncs == 1

    # ... the next try after it does, and one success closes the breaker.
    async def recovered() -> bool:
        await env.sleep(timedelta(hours=1))
        return await status_is("active")

    await eventually(recovered, timeout=60)
    state = await handle.query(BankSyncWorkflow.state)
    assert state.failures == 0 and state.syncs >= 2

    await handle.signal(BankSyncWorkflow.disconnect)
    await handle.result()
