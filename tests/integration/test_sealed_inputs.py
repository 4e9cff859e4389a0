"""Anyone who reaches Temporal's frontend, past the API: the real worker (as `make dev` runs it,
on the real dev server and PostgreSQL) refuses workflow inputs, signals and updates that the
workflow's owner's key did not seal, without stalling the workflow.

The forger is a plain `temporalio` client with no codec: plain JSON, or payloads it sealed
itself with another member's key, straight to `user/<uuid>/badges`.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.converter import WorkflowSerializationContext
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from badges.config import Settings
from badges.db.keys import KeyStore
from badges.db.progress import AwardRow, BadgeProgress
from badges.domain.events import BadgeEvent
from badges.domain.identity import consent_workflow_id, user_badges_workflow_id
from badges.messages.user_badges import BadgeSnapshot
from badges.temporal import change_consent, record_event
from badges.temporal.codec import EncryptionCodec
from badges.temporal.converter import PAYLOAD_REFUSED
from badges.temporal.inbound import ARGUMENTS_REFUSED
from tests.conftest import create_member
from tests.support import eventually

pytestmark = pytest.mark.usefixtures("worker")

BADGE = "calculator-explorer"  # three tool_usage events


def calculator_use(event_id: str) -> BadgeEvent:
    return BadgeEvent(id=event_id, type="tool_usage", timestamp=datetime.now(UTC))  # type: ignore[arg-type]


async def forger(dev_server: WorkflowEnvironment) -> Client:
    """A client with the SDK's default converter and no codec."""
    return await Client.connect(
        dev_server.client.service_client.config.target_host, namespace=dev_server.client.namespace
    )


async def sealed_for(keys: KeyStore, workflow_id: str, event: BadgeEvent) -> Payload:
    """`event` as the codec seals it for `workflow_id`'s owner."""
    plain = Payload(metadata={"encoding": b"json/plain"}, data=event.model_dump_json().encode())
    codec = EncryptionCodec(keys).with_context(WorkflowSerializationContext(namespace="", workflow_id=workflow_id))
    [sealed] = await codec.encode([plain])
    return sealed


async def progress_and_awards(engine: AsyncEngine, member: uuid.UUID) -> tuple[int, int]:
    async with engine.connect() as connection:
        value = await connection.scalar(
            select(BadgeProgress.value).where(BadgeProgress.user_id == member, BadgeProgress.badge_id == BADGE)
        )
        awards = (await connection.execute(select(AwardRow.badge_id).where(AwardRow.user_id == member))).all()
    return value or 0, len(awards)


async def seen_event_ids(dev_server: WorkflowEnvironment, member: uuid.UUID) -> list[str]:
    handle = dev_server.client.get_workflow_handle(user_badges_workflow_id(member))
    snapshot = await handle.query("snapshot", result_type=BadgeSnapshot)
    return snapshot.state.recent_event_ids


async def test_forged_signals_are_not_applied_and_the_workflow_goes_on(
    dev_server: WorkflowEnvironment, system_settings: Settings, engine: AsyncEngine, keys: KeyStore
) -> None:
    member, other = await create_member(engine, keys), await create_member(engine, keys)
    workflow_id = user_badges_workflow_id(member)
    await record_event(dev_server.client, system_settings, member, calculator_use("proper-1"))
    await eventually(lambda: _has_seen(dev_server, member, "proper-1"))

    handle = (await forger(dev_server)).get_workflow_handle(workflow_id)
    # Plain JSON, as a forger writes it.
    await handle.signal("record_event", calculator_use("forged-plain").model_dump(mode="json"))
    # Sealed, but with another member's key (one the forger got hold of).
    await handle.signal("record_event", RawValue(await sealed_for(keys, user_badges_workflow_id(other), _e("other"))))
    # Sealed with this member's key, then altered.
    altered = await sealed_for(keys, workflow_id, calculator_use("forged-altered"))
    altered.data = altered.data[:-1] + bytes([altered.data[-1] ^ 1])
    await handle.signal("record_event", RawValue(altered))
    # Named as sealed, with a key id that is no key at all (NUL included).
    await handle.signal(
        "record_event",
        RawValue(Payload(metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"k\x00"}, data=b"x")),
    )
    # A reviewer's decision approving events, in plain JSON.
    await handle.signal(
        "resolve_review",
        {
            "review_id": "r-1",
            "approved": True,
            "resolved_by": "mallory",
            "events": [_e("review").model_dump(mode="json")],
        },
    )
    # No argument at all: nothing for the codec to refuse, and a TypeError in the handler.
    await handle.signal("record_event")

    await record_event(dev_server.client, system_settings, member, calculator_use("proper-2"))
    # Signals are handled in the order they arrived: once proper-2 is in, every forgery before it
    # has been handled too.
    await eventually(lambda: _has_seen(dev_server, member, "proper-2"))
    seen = await seen_event_ids(dev_server, member)
    assert [event_id for event_id in seen if not event_id.startswith("proper-")] == []
    await eventually(lambda: _progress_is(engine, member, 2))
    assert await progress_and_awards(engine, member) == (2, 0)  # any forgery counted would have awarded it

    # And the workflow goes on: a third proper event earns the badge.
    await record_event(dev_server.client, system_settings, member, calculator_use("proper-3"))
    await eventually(lambda: _awarded(engine, member))


async def test_a_forged_start_fails_its_run_and_the_next_proper_event_starts_a_fresh_one(
    dev_server: WorkflowEnvironment, system_settings: Settings, engine: AsyncEngine, keys: KeyStore
) -> None:
    member = await create_member(engine, keys)
    workflow_id = user_badges_workflow_id(member)
    # A state with the badge nearly earned, in plain JSON, as the input of a new run.
    forged_state = {"badges": {BADGE: {"version": 1, "kind": "count", "count": 2}}}
    await (await forger(dev_server)).start_workflow(
        "UserBadgesWorkflow",
        {"user_id": str(member), "state": forged_state},
        id=workflow_id,
        task_queue=system_settings.task_queue,
    )

    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(dev_server.client.get_workflow_handle(workflow_id).result(), 30)
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == PAYLOAD_REFUSED

    await record_event(dev_server.client, system_settings, member, calculator_use("proper-1"))
    await eventually(lambda: _has_seen(dev_server, member, "proper-1"))
    await eventually(lambda: _progress_is(engine, member, 1))
    assert await progress_and_awards(engine, member) == (1, 0)


async def test_forged_updates_are_rejected(
    dev_server: WorkflowEnvironment, system_settings: Settings, engine: AsyncEngine, keys: KeyStore
) -> None:
    member = await create_member(engine, keys)
    # The member's consent workflow, running (started by a proper change).
    assert await change_consent(dev_server.client, system_settings, member, [], wait=10)
    handle = (await forger(dev_server)).get_workflow_handle(consent_workflow_id(member))

    with pytest.raises(WorkflowUpdateFailedError) as plain:
        await asyncio.wait_for(handle.execute_update("change", {"changes": []}), 30)
    assert isinstance(plain.value.cause, ApplicationError) and plain.value.cause.type == PAYLOAD_REFUSED
    with pytest.raises(WorkflowUpdateFailedError) as empty:
        await asyncio.wait_for(handle.execute_update("change"), 30)
    assert isinstance(empty.value.cause, ApplicationError) and empty.value.cause.type == ARGUMENTS_REFUSED

    # The workflow still answers proper changes.
    assert await change_consent(dev_server.client, system_settings, member, [], wait=10)


def _e(label: str) -> BadgeEvent:
    return calculator_use(f"forged-{label}")


async def _has_seen(dev_server: WorkflowEnvironment, member: uuid.UUID, event_id: str) -> bool:
    return event_id in await seen_event_ids(dev_server, member)


async def _progress_is(engine: AsyncEngine, member: uuid.UUID, value: int) -> bool:
    return (await progress_and_awards(engine, member))[0] >= value


async def _awarded(engine: AsyncEngine, member: uuid.UUID) -> bool:
    return (await progress_and_awards(engine, member))[1] == 1
