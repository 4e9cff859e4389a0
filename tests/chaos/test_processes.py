"""Many processes, one service: a member streaming from one API process gets every update caused by
events posted to another (each process tails the outbox), and two worker processes on the same
task queues share the members between them, counting each event once."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from badges.domain.identity import user_badges_workflow_id
from tests.chaos.conftest import System
from tests.chaos.load import Load
from tests.integration.test_task_queues import queue_pollers
from tests.processes import start_worker, stop
from tests.support import eventually

MEMBERS = 16  # enough that both workers get some: all on one would be a 1 in 2**15 chance
POSTING = 4.0  # seconds


async def test_streams_on_one_api_process_see_events_posted_to_another_and_two_workers_share_members(
    chaos_system: System,
) -> None:
    other_worker = start_worker(chaos_system.settings, chaos_system.log)
    temporal = await Client.connect(f"127.0.0.1:{chaos_system.temporal_port}")
    try:
        pollers = queue_pollers(temporal, chaos_system.settings.task_queue)

        async def both_polling() -> bool:
            pids = {identity.split("@")[0] for identity in await pollers()}
            return {str(chaos_system.worker.pid), str(other_worker.pid)} <= pids

        await eventually(both_polling, timeout=60)
        async with chaos_system.another_api() as (other_api, other):
            assert (await other.get("/readyz")).status_code == 200
            load = await Load.start(chaos_system, members=MEMBERS, via=other)
            try:
                await asyncio.sleep(POSTING)
                await load.stop_posting()
                found = await load.verify()
            finally:
                await load.close()
        workers: dict[str, int] = {}
        for member in load.members:
            handle = temporal.get_workflow_handle(user_badges_workflow_id(member.user_id))
            async for event in handle.fetch_history_events():
                if event.HasField("workflow_task_completed_event_attributes"):
                    identity = event.workflow_task_completed_event_attributes.identity
                    workers[identity] = workers.get(identity, 0) + 1
        pids = {identity.split("@")[0] for identity in workers}
        assert {str(chaos_system.worker.pid), str(other_worker.pid)} <= pids, workers
        print(
            f"\n[chaos] two API processes, two workers: streams on API {chaos_system.api.pid}, events posted to"
            f" API {other_api.pid}; workflow tasks per worker {workers}\n[chaos]   found: {found}",
            flush=True,
        )
    finally:
        stop(other_worker)
