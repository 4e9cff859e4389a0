"""Faults injected on request, so tests can watch the adapter cope with a misbehaving TrueLayer.

Not part of TrueLayer's API: armed by `POST /_sandbox/faults` (which replaces any fault armed
before). The next `count` calls to TrueLayer's endpoints (never the sandbox's own controls) wait
`delay_seconds`, then fail with `status` (429, or 500 and up) or, without one, answer normally.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from badges.banking.sandbox.truelayer.errors import error


@dataclass
class Fault:
    status: int | None = None
    count: int = 0
    delay_seconds: float = 0.0


async def inject(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """The app's middleware: faults apply to TrueLayer's endpoints only, never to the sandbox's own controls."""
    if request.url.path.startswith("/_sandbox"):
        return await call_next(request)
    fault: Fault = request.app.state.bank.fault
    if fault.count > 0:
        fault.count -= 1
        if fault.delay_seconds:
            await asyncio.sleep(fault.delay_seconds)
        if fault.status == 429:
            return error(429, "provider_too_many_requests", "Too many requests: try again later.")
        if fault.status is not None and fault.status >= 500:
            return error(fault.status, "internal_server_error", "Internal server error.")
    return await call_next(request)
