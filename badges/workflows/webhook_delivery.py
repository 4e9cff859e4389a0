"""WebhookDeliveryWorkflow (`user/{uid}/webhook/{badge}/{instance}`): POST one award to its badge's
webhook URL until the receiver takes it, or give up and say why.

Started by the member's badge workflow as an abandoned child, one per award. Retries back off
exponentially (5 s doubling up to an hour, for a day by default); a 4xx that will never succeed
stops at once. Every attempt updates the delivery row; giving up marks it failed.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError, RetryState, TimeoutError

with workflow.unsafe.imports_passed_through():
    from badges.messages.webhook_delivery import (
        WebhookAttempt,
        WebhookDeliveryInput,
        WebhookDeliveryResult,
        WebhookFailure,
    )

ATTEMPT_TIMEOUT = timedelta(seconds=30)
BACKOFF_COEFFICIENT = 2.0
# Recording the outcome is a database write: it retries until the database is back.
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn
class WebhookDeliveryWorkflow:
    @workflow.run
    async def run(self, input: WebhookDeliveryInput) -> WebhookDeliveryResult:
        try:
            attempt: WebhookAttempt = await workflow.execute_activity(
                "deliver_webhook",
                input,
                result_type=WebhookAttempt,
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=input.give_up_after,
                retry_policy=RetryPolicy(
                    initial_interval=input.initial_retry_interval,
                    backoff_coefficient=BACKOFF_COEFFICIENT,
                    maximum_interval=input.maximum_retry_interval,
                ),
            )
        except ActivityError as error:
            reason = give_up_reason(error, input.give_up_after)
            await workflow.execute_activity(
                "record_webhook_outcome",
                WebhookFailure(
                    delivery_id=input.delivery_id,
                    user_id=input.user_id,
                    badge_id=input.badge_id,
                    url=input.url,
                    error=reason,
                ),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RECORD_RETRY,
            )
            return WebhookDeliveryResult(status="failed", error=reason)
        return WebhookDeliveryResult(status="delivered", status_code=attempt.status_code, attempts=attempt.attempt)


def give_up_reason(error: ActivityError, give_up_after: timedelta) -> str:
    """Why the delivery stopped: the last attempt's error, and whether time ran out first."""
    cause = error.cause
    message = cause.message if isinstance(cause, FailureError) else str(cause or error)
    if error.retry_state == RetryState.TIMEOUT or isinstance(cause, TimeoutError):
        return f"gave up after {give_up_after}; last attempt: {message}"
    return message
