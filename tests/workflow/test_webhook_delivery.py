"""WebhookDeliveryWorkflow's logic on the time-skipping server, its activities stood in for: a
receiver that takes the award on the third attempt, one that refuses it (no retry), and one that
is down until time runs out; a failed delivery is recorded with the reason."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from badges.domain.definitions import BadgeDefinition
from badges.domain.identity import webhook_delivery_workflow_id
from badges.messages.webhook_delivery import (
    WebhookAttempt,
    WebhookDeliveryInput,
    WebhookDeliveryResult,
    WebhookFailure,
    award_webhook,
)
from badges.workflows.webhook_delivery import WebhookDeliveryWorkflow


class Receiver:
    """Stand-ins for the delivery activities: answers `statuses` in turn (the last from then on);
    0 stands for a receiver that cannot be reached."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = statuses
        self.attempts = 0
        self.failures: list[WebhookFailure] = []

    @activity.defn(name="deliver_webhook")
    async def deliver_webhook(self, delivery: WebhookDeliveryInput) -> WebhookAttempt:
        self.attempts += 1
        status = self.statuses[min(self.attempts, len(self.statuses)) - 1]
        if status == 0:
            raise ApplicationError(f"POST {delivery.url} failed: ConnectError", type="WebhookUnreachable")
        if status >= 400 and status < 500:
            raise ApplicationError(f"refused: HTTP {status}", type="WebhookRefused", non_retryable=True)
        if status >= 300:
            raise ApplicationError(f"not taken: HTTP {status}", type="WebhookNotTaken")
        return WebhookAttempt(status_code=status, attempt=activity.info().attempt)

    @activity.defn(name="record_webhook_outcome")
    async def record_webhook_outcome(self, failure: WebhookFailure) -> None:
        self.failures.append(failure)


def delivery(**retries: timedelta) -> WebhookDeliveryInput:
    badge = BadgeDefinition.model_validate(
        {
            "badgeId": "hooked",
            "name": "Hooked",
            "rule": {"kind": "count", "eventType": "tool_usage", "target": 3},
            "config": {"webSocket": {"eventTypes": ["tool_usage"], "webhookUrl": "https://example.com/hooks"}},
        }
    )
    made = award_webhook(uuid.uuid4(), badge, "1", datetime(2026, 11, 25, 10, tzinfo=UTC))
    assert made is not None
    return made.model_copy(update=retries)


@asynccontextmanager
async def delivering(env: WorkflowEnvironment, receiver: Receiver) -> AsyncIterator[str]:
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[WebhookDeliveryWorkflow],
        activities=[receiver.deliver_webhook, receiver.record_webhook_outcome],
    ):
        yield task_queue


async def deliver(env: WorkflowEnvironment, receiver: Receiver, input: WebhookDeliveryInput) -> WebhookDeliveryResult:
    async with delivering(env, receiver) as task_queue:
        return await env.client.execute_workflow(
            WebhookDeliveryWorkflow.run,
            input,
            id=webhook_delivery_workflow_id(input.user_id, input.badge_id, input.instance),
            task_queue=task_queue,
        )


async def test_a_receiver_failing_twice_gets_the_award_on_the_third_attempt(workflow_env: WorkflowEnvironment) -> None:
    receiver = Receiver(503, 503, 200)
    result = await deliver(workflow_env, receiver, delivery())
    assert (result.status, result.status_code, result.attempts) == ("delivered", 200, 3)
    assert receiver.failures == []


async def test_a_refusing_receiver_fails_the_delivery_at_once(workflow_env: WorkflowEnvironment) -> None:
    receiver = Receiver(400, 200)
    input = delivery()
    result = await deliver(workflow_env, receiver, input)
    assert result.status == "failed" and result.error == "refused: HTTP 400"
    assert receiver.attempts == 1
    assert [(f.delivery_id, f.error) for f in receiver.failures] == [(input.delivery_id, "refused: HTTP 400")]


async def test_a_receiver_that_is_always_down_fails_the_delivery_when_time_runs_out(
    workflow_env: WorkflowEnvironment,
) -> None:
    receiver = Receiver(0)
    input = delivery(
        initial_retry_interval=timedelta(seconds=1),
        maximum_retry_interval=timedelta(seconds=4),
        give_up_after=timedelta(seconds=20),
    )
    result = await deliver(workflow_env, receiver, input)
    assert result.status == "failed"
    assert result.error == "gave up after 0:00:20; last attempt: POST https://example.com/hooks failed: ConnectError"
    assert receiver.attempts >= 2
    assert [f.error for f in receiver.failures] == [result.error]
