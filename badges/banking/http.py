"""What the adapters over httpx (TrueLayer, Yodlee) share: a request whose transport failure is
a retryable `ProviderError`, and an error response's fields as one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from badges.banking.provider import FailureKind, ProviderError


async def send(client: httpx.AsyncClient, provider: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """The request; a timeout or an unreachable provider is `unavailable` (retried later)."""
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TimeoutException as error:
        raise ProviderError("unavailable", "TIMEOUT", f"{provider} did not answer in time: {error}") from error
    except httpx.TransportError as error:  # refused, reset, DNS
        raise ProviderError("unavailable", "UNREACHABLE", str(error)) from error


def raise_for_error(
    response: httpx.Response,
    provider: str,
    fields: tuple[str, str],
    failure_kind: Callable[[int, str], FailureKind],
) -> None:
    """An error response as a ProviderError: its code and message from the JSON body's `fields`
    (the provider's names for them), what to do about it from `failure_kind(status, code)`."""
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    code_field, message_field = fields
    code = str(body.get(code_field) or f"HTTP_{response.status_code}")
    message = str(body.get(message_field) or response.reason_phrase or f"{provider} refused the request")
    raise ProviderError(failure_kind(response.status_code, code), code, message)
