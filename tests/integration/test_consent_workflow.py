"""ConsentWorkflow on the time-skipping server with its real activities on PostgreSQL: reminders,
expiry, revocation and renewal."""

from __future__ import annotations

import uuid
from datetime import timedelta

from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowHandle
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from badges.config import Settings
from badges.db.consents import has_consent
from badges.db.keys import KeyStore
from badges.db.members import load_demographics, save_demographics
from badges.domain.consent import ConsentGrant
from badges.domain.identity import consent_workflow_id
from badges.messages.consent import ConsentInput
from badges.workflows.consent import ConsentWorkflow
from tests.conftest import create_member
from tests.integration.support import running_worker
from tests.support import eventually


async def _statuses(pool: AsyncConnectionPool, member: uuid.UUID) -> list[str]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT payload->>'status' FROM outbox WHERE user_id = %s AND kind = 'insight'"
            " AND payload->>'type' = 'consent' ORDER BY id",
            (member,),
        )
        return [row[0] for row in await cur.fetchall()]


async def _grant(
    env: WorkflowEnvironment, task_queue: str, member: uuid.UUID, days: int, scope: str = "open_banking"
) -> WorkflowHandle:
    now = await env.get_current_time()
    request = ConsentGrant(scope=scope, purpose="budgeting", expires_at=now + timedelta(days=days))
    return await env.client.start_workflow(
        ConsentWorkflow.run,
        ConsentInput(user_id=member),
        id=consent_workflow_id(member),
        task_queue=task_queue,
        start_signal="grant",
        start_signal_args=[request],
    )


async def test_a_grant_is_reminded_of_then_expires_and_renewal_moves_the_expiry(
    time_skipping: WorkflowEnvironment,
    settings: Settings,
    engine: AsyncEngine,
    keys: KeyStore,
    pool: AsyncConnectionPool,
) -> None:
    expiring = await create_member(engine, keys)
    renewing = await create_member(engine, keys)
    async with running_worker(time_skipping, settings, pool, engine, keys) as task_queue:
        await _grant(time_skipping, task_queue, expiring, 30)
        renewal = await _grant(time_skipping, task_queue, renewing, 30)

        async def granted() -> bool:
            return await _statuses(pool, expiring) == ["granted"] and await _statuses(pool, renewing) == ["granted"]

        await eventually(granted)
        assert await has_consent(pool, expiring, "open_banking", await time_skipping.get_current_time())

        await time_skipping.sleep(timedelta(days=20))
        await _grant(time_skipping, task_queue, renewing, 60)  # renewed 10 days before expiry
        await time_skipping.sleep(timedelta(days=4))

        async def reminded() -> bool:
            return await _statuses(pool, expiring) == ["granted", "expiring"]

        await eventually(reminded)

        await time_skipping.sleep(timedelta(days=7))

        async def expired() -> bool:
            return await _statuses(pool, expiring) == ["granted", "expiring", "expired"]

        await eventually(expired)
        now = await time_skipping.get_current_time()
        assert not await has_consent(pool, expiring, "open_banking", now)
        assert await has_consent(pool, renewing, "open_banking", now)
        assert await _statuses(pool, renewing) == ["granted", "granted"]

        await renewal.signal(ConsentWorkflow.revoke, "open_banking")

        async def revoked() -> bool:
            return await _statuses(pool, renewing) == ["granted", "granted", "revoked"]

        await eventually(revoked)
        assert not await has_consent(pool, renewing, "open_banking", await time_skipping.get_current_time())
        state = await renewal.query(ConsentWorkflow.consents)
        assert state.scopes["open_banking"].status == "revoked"


async def test_expiry_deletes_what_the_scope_justified_audits_it_and_replays(
    time_skipping: WorkflowEnvironment,
    settings: Settings,
    engine: AsyncEngine,
    keys: KeyStore,
    pool: AsyncConnectionPool,
    data_converter: DataConverter,
) -> None:
    member = await create_member(engine, keys)
    async with running_worker(time_skipping, settings, pool, engine, keys) as task_queue:
        handle = await _grant(time_skipping, task_queue, member, 10, scope="demographics")

        async def granted() -> bool:
            return await _statuses(pool, member) == ["granted"]

        await eventually(granted)
        assert await save_demographics(engine, keys, member, {"postcode": "SW1A", "salaryBracket": "30-45k"})
        assert await load_demographics(engine, keys, member) == {"postcode": "SW1A", "salaryBracket": "30-45k"}

        await time_skipping.sleep(timedelta(days=11))

        async def expired() -> bool:
            return await _statuses(pool, member) == ["granted", "expiring", "expired"]

        await eventually(expired)
        assert await load_demographics(engine, keys, member) is None
        async with pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT action, actor_role, details->>'rowsDeleted' FROM audit_log WHERE subject = %s ORDER BY id",
                (member,),
            )
            assert await cursor.fetchall() == [("consent.granted", "user", "0"), ("consent.expired", "system", "1")]
        history = await handle.fetch_history()
    # Grant, reminder timer, expiry timer and their activities replay deterministically.
    await Replayer(workflows=[ConsentWorkflow], data_converter=data_converter).replay_workflow(history)
