"""WebhookDeliveryWorkflow on the time-skipping server, POSTing to a real local HTTP receiver that
checks every request's signature with the badge's secret, and writing real delivery rows."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from badges.activities.webhooks import WebhookActivities, make_webhook_client
from badges.db.keys import KeyStore
from badges.db.webhooks import WebhookDelivery, ensure_badge_webhook_secret
from badges.domain.definitions import BadgeDefinition
from badges.domain.identity import webhook_delivery_workflow_id
from badges.domain.signatures import SignatureError, verify
from badges.domain.webhooks import award_delivery_id
from badges.messages.webhook_delivery import WebhookDeliveryInput, WebhookDeliveryResult, award_webhook
from badges.workflows.webhook_delivery import WebhookDeliveryWorkflow
from tests.conftest import create_member
from tests.support import free_port

AWARDED_AT = datetime(2026, 11, 25, 10, tzinfo=UTC)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@dataclass
class Receiver:
    """Answers with the scripted statuses in turn (the last one from then on)."""

    url: str
    secret: str
    statuses: list[int]
    requests: list[Received] = field(default_factory=list)


@asynccontextmanager
async def receiver(secret: str, statuses: list[int], auth: str = "signature") -> AsyncIterator[Receiver]:
    port = free_port()
    state = Receiver(url=f"http://127.0.0.1:{port}/hooks/awards", secret=secret, statuses=statuses)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if auth == "signature":
            try:
                verify(secret.encode(), request.headers.get("X-Badges-Signature", ""), body, now=int(time.time()))
                ok = True
            except SignatureError:
                ok = False
        else:
            ok = request.headers.get("Authorization") == f"Bearer {secret}"
        state.requests.append(Received(dict(request.headers), body, ok))
        if not ok:
            return web.Response(status=401, text="bad signature")
        status = state.statuses[min(len(state.requests), len(state.statuses)) - 1]
        return web.Response(status=status, text="" if status < 300 else f"receiver says {status}")

    app = web.Application()
    app.router.add_post("/hooks/awards", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield state
    finally:
        await runner.cleanup()


@asynccontextmanager
async def delivery_worker(env: WorkflowEnvironment, engine: AsyncEngine, keys: KeyStore) -> AsyncIterator[str]:
    task_queue = f"tq-{uuid.uuid4()}"
    async with make_webhook_client() as http:
        activities = WebhookActivities(engine, keys, http, allow_private_targets=True)
        async with Worker(
            env.client,
            task_queue=task_queue,
            workflows=[WebhookDeliveryWorkflow],
            activities=[activities.deliver_webhook, activities.record_webhook_outcome],
        ):
            yield task_queue


def badge(badge_id: str, url: str, auth: str = "signature") -> BadgeDefinition:
    return BadgeDefinition.model_validate(
        {
            "badgeId": badge_id,
            "version": 2,
            "name": "Calculator explorer",
            "rule": {"kind": "count", "eventType": "tool_usage", "target": 3},
            "config": {"webSocket": {"eventTypes": ["tool_usage"], "webhookUrl": url, "authenticationMethod": auth}},
            "reward": {"kind": "points", "points": 50},
        }
    )


async def deliver(env: WorkflowEnvironment, task_queue: str, delivery: WebhookDeliveryInput) -> WebhookDeliveryResult:
    return await env.client.execute_workflow(
        WebhookDeliveryWorkflow.run,
        delivery,
        id=webhook_delivery_workflow_id(delivery.user_id, delivery.badge_id, delivery.instance),
        task_queue=task_queue,
    )


async def row_of(engine: AsyncEngine, delivery_id: str) -> Any:
    async with engine.connect() as connection:
        return (
            await connection.execute(select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id))
        ).one()


async def setup(engine: AsyncEngine, keys: KeyStore) -> tuple[uuid.UUID, str, str]:
    member = await create_member(engine, keys)
    badge_id = f"hook-{uuid.uuid4().hex[:10]}"
    secret = await ensure_badge_webhook_secret(engine, keys, badge_id)
    assert secret is not None
    assert await ensure_badge_webhook_secret(engine, keys, badge_id) is None  # answered once only
    return member, badge_id, secret


async def test_an_award_is_delivered_signed_the_first_time(time_skipping, engine, keys: KeyStore) -> None:
    member, badge_id, secret = await setup(engine, keys)
    async with receiver(secret, [200]) as hook, delivery_worker(time_skipping, engine, keys) as task_queue:
        delivery = award_webhook(member, badge(badge_id, hook.url), "default", AWARDED_AT)
        assert delivery is not None
        result = await deliver(time_skipping, task_queue, delivery)

    assert result.status == "delivered" and result.attempts == 1 and result.status_code == 200
    [request] = hook.requests
    assert request.signature_ok
    assert (
        request.headers["X-Badges-Delivery"] == delivery.delivery_id == award_delivery_id(member, badge_id, "default")
    )
    assert request.headers["Content-Type"] == "application/json"
    assert httpx.Response(200, content=request.body).json() == {
        "type": "award",
        "deliveryId": delivery.delivery_id,
        "memberId": str(member),
        "badgeId": badge_id,
        "instance": "default",
        "version": 2,
        "awardedAt": "2026-11-25T10:00:00+00:00",
        "reward": {"kind": "points", "points": 50},
    }
    row = await row_of(engine, delivery.delivery_id)
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("delivered", 1, 200, None)
    assert (row.user_id, row.badge_id, row.url) == (member, badge_id, hook.url)


async def test_a_token_badge_sends_its_secret_as_a_bearer_token(time_skipping, engine, keys: KeyStore) -> None:
    member, badge_id, secret = await setup(engine, keys)
    async with (
        receiver(secret, [204], auth="token") as hook,
        delivery_worker(time_skipping, engine, keys) as task_queue,
    ):
        delivery = award_webhook(member, badge(badge_id, hook.url, auth="token"), "default", AWARDED_AT)
        assert delivery is not None
        result = await deliver(time_skipping, task_queue, delivery)
    assert result.status == "delivered"
    [request] = hook.requests
    assert request.signature_ok and "X-Badges-Signature" not in request.headers


async def test_a_receiver_failing_twice_gets_the_award_on_the_third_attempt(
    time_skipping, engine, keys: KeyStore
) -> None:
    member, badge_id, secret = await setup(engine, keys)
    async with receiver(secret, [503, 503, 200]) as hook, delivery_worker(time_skipping, engine, keys) as task_queue:
        delivery = award_webhook(member, badge(badge_id, hook.url), "gold", AWARDED_AT)
        assert delivery is not None
        result = await deliver(time_skipping, task_queue, delivery)

    assert result.status == "delivered" and result.attempts == 3
    assert len(hook.requests) == 3 and all(request.signature_ok for request in hook.requests)
    # Every attempt of one award carries the same delivery id, for receivers to de-duplicate.
    assert {request.headers["X-Badges-Delivery"] for request in hook.requests} == {delivery.delivery_id}
    row = await row_of(engine, delivery.delivery_id)
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("delivered", 3, 200, None)


async def test_a_refusing_receiver_fails_the_delivery_at_once(time_skipping, engine, keys: KeyStore) -> None:
    member, badge_id, secret = await setup(engine, keys)
    async with receiver(secret, [400, 200]) as hook, delivery_worker(time_skipping, engine, keys) as task_queue:
        delivery = award_webhook(member, badge(badge_id, hook.url), "default", AWARDED_AT)
        assert delivery is not None
        result = await deliver(time_skipping, task_queue, delivery)

    assert result.status == "failed" and result.error is not None and "HTTP 400" in result.error
    assert len(hook.requests) == 1  # not retried
    row = await row_of(engine, delivery.delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, 400)
    assert "HTTP 400" in row.last_error
    assert "receiver says" not in row.last_error  # the receiver's body is not stored (staff can read rows)


async def test_a_receiver_that_is_always_down_fails_the_delivery_when_time_runs_out(
    time_skipping, engine, keys: KeyStore
) -> None:
    member, badge_id, _ = await setup(engine, keys)
    nowhere = f"http://127.0.0.1:{free_port()}/hooks/awards"  # nothing listens there
    delivery = award_webhook(member, badge(badge_id, nowhere), "default", AWARDED_AT)
    assert delivery is not None
    delivery = delivery.model_copy(
        update={
            "initial_retry_interval": timedelta(seconds=1),
            "maximum_retry_interval": timedelta(seconds=4),
            "give_up_after": timedelta(seconds=20),
        }
    )
    async with delivery_worker(time_skipping, engine, keys) as task_queue:
        result = await deliver(time_skipping, task_queue, delivery)

    assert result.status == "failed" and result.error is not None
    assert result.error.startswith("gave up after 0:00:20; last attempt: POST http://127.0.0.1:")
    assert "ConnectError" in result.error
    row = await row_of(engine, delivery.delivery_id)
    assert row.status == "failed" and row.attempts >= 2 and row.last_status_code is None
    assert row.last_error == result.error
