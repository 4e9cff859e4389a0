"""Faults injected on request, so tests can watch the adapter (and the breakers) cope with a
misbehaving Yodlee.

Not part of Yodlee's API: armed by `POST /_sandbox/faults` (which replaces any fault armed
before). The next `count` calls (null: every call until `DELETE /_sandbox/faults`) to Yodlee's
endpoints (never the sandbox's own controls, nor the FastLink page) wait `delay_seconds`, then
fail with `status` (429, or 500 and up) or, without one, answer normally. `calls` counts every
call to Yodlee's endpoints, so a test can see what an outage cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from badges.banking.sandbox.yodlee.errors import error


@dataclass
class Fault:
    status: int | None = None
    count: int | None = 0
    delay_seconds: float = 0.0

    def take(self) -> bool:
        """Whether this call is faulted (and one fewer is left)."""
        if self.count is None:
            return True
        if self.count > 0:
            self.count -= 1
            return True
        return False


async def inject(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """The app's middleware: faults apply to Yodlee's endpoints only."""
    if request.url.path.startswith(("/_sandbox", "/fastlink")):
        return await call_next(request)
    bank = request.app.state.bank
    bank.calls += 1
    fault: Fault = bank.fault
    if fault.take():
        if fault.delay_seconds:
            await asyncio.sleep(fault.delay_seconds)
        if fault.status == 429:
            return error(429, "Y902", "Too many requests: try again later.")
        if fault.status is not None and fault.status >= 500:
            return error(fault.status, "Y901", "Service not available.")
    return await call_next(request)
