"""The worker's inbound interceptor: a start, signal or update whose arguments do not fit its
handler is refused before the handler runs.

The codec refuses every payload its workflow's owner did not seal; this covers what has no
payload to refuse: a signal or update sent with fewer arguments than its handler takes (none at
all, say, straight to Temporal's frontend). Called as it is, the handler would raise `TypeError`,
which fails the workflow task, and Temporal retries that task, with the call in it, for ever: the
member's workflow would stop. Refused instead: a signal is dropped with a warning, an update fails
and a start fails its run, as a refused payload does (`badges.temporal.converter`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

# The `type` of the failure a refused update or start becomes.
ARGUMENTS_REFUSED = "ArgumentsRefused"


class FittingArgumentsInterceptor(Interceptor):
    """Pass to the worker (`interceptors=[...]`)."""

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return FittingArgumentsInbound


class FittingArgumentsInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        if not fits(input.run_fn, True, input.args):
            raise refusal("the workflow's input", input.args)
        return await self.next.execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        if not fits(*handler("signals", input.signal), input.args):
            workflow.logger.warning(
                "dropped signal %s: %d argument(s) do not fit its handler", input.signal, len(input.args)
            )
            return
        await self.next.handle_signal(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        if not fits(*handler("updates", input.update), input.args):
            raise refusal(f"update {input.update}", input.args)
        self.next.handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        if not fits(*handler("updates", input.update), input.args):
            raise refusal(f"update {input.update}", input.args)
        return await self.next.handle_update_handler(input)


def handler(kind: str, name: str) -> tuple[Callable[..., Any] | None, bool]:
    """The function that handles a signal or update of this workflow (the named one, else the
    dynamic one), and whether it is a method (its first parameter the workflow object)."""
    definition = workflow._Definition.must_from_class(type(workflow.instance()))
    handlers = getattr(definition, kind)
    found = handlers.get(name) or handlers.get(None)
    return (found.fn, found.is_method) if found is not None else (None, False)


def fits(function: Callable[..., Any] | None, is_method: bool, args: Sequence[Any]) -> bool:
    if function is None:
        return True  # no handler: the SDK keeps a signal for later, and rejects an update itself
    try:
        signature_of(function).bind(*((None,) if is_method else ()), *args)
    except TypeError:
        return False
    return True


@functools.lru_cache(maxsize=256)
def signature_of(function: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(function)


def refusal(what: str, args: Sequence[Any]) -> ApplicationError:
    return ApplicationError(
        f"{what}: {len(args)} argument(s) do not fit its handler", type=ARGUMENTS_REFUSED, non_retryable=True
    )
