"""`deliver_webhook` and `record_webhook_outcome`: POST an award to a badge's webhook URL, signed
or with a bearer token, and keep the delivery row saying how it went."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from badges.db.keys import KeyStore
from badges.db.webhooks import badge_webhook_secret, record_delivery_attempt, record_delivery_failure
from badges.domain.signatures import SIGNATURE_HEADER, sign
from badges.domain.webhooks import DELIVERY_HEADER, delivered, worth_retrying
from badges.messages.webhook_delivery import WebhookAttempt, WebhookDeliveryInput, WebhookFailure

REQUEST_TIMEOUT = httpx.Timeout(10.0)
# A rotated badge secret reaches deliveries within this time.
SECRET_CACHE_SECONDS = 30.0
USER_AGENT = "badges-webhooks/1"


def make_webhook_client() -> httpx.AsyncClient:
    """The worker's HTTP client for webhooks: no redirects followed (a 3xx is not a delivery)."""
    return httpx.AsyncClient(timeout=REQUEST_TIMEOUT, follow_redirects=False, headers={"User-Agent": USER_AGENT})


class UnsafeWebhookTarget(ValueError):
    """A webhook URL the worker must not call: plain http, or a host inside our own network."""


async def check_webhook_target(url: str, allow_private: bool) -> None:
    """Refuse http and hosts that resolve to loopback, private, link-local or reserved addresses,
    so a badge definition cannot make the worker call internal services (SSRF). `allow_private`
    (local development and tests) lifts both. The check runs at every attempt; a host whose DNS
    answer changes between this check and the connection is not covered."""
    if allow_private:
        return
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise UnsafeWebhookTarget(f"webhook URLs must be https: {url}")
    infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise UnsafeWebhookTarget(f"webhook host {parts.hostname} resolves to a non-public address")


class WebhookActivities:
    def __init__(
        self, engine: AsyncEngine, keys: KeyStore, http: httpx.AsyncClient, *, allow_private_targets: bool = False
    ) -> None:
        self._engine = engine
        self._keys = keys
        self._http = http
        self._allow_private = allow_private_targets
        self._secrets: dict[str, tuple[str, float]] = {}

    @activity.defn
    async def deliver_webhook(self, delivery: WebhookDeliveryInput) -> WebhookAttempt:
        """One attempt: 2xx returns; other answers and network errors raise, retryable or not,
        after the delivery row records the attempt."""
        attempt = activity.info().attempt
        secret = await self._secret(delivery.badge_id)
        if secret is None:
            error = f"badge {delivery.badge_id} has no webhook secret: an admin must set one"
            await self._record(delivery, "pending", attempt, None, error)
            raise ApplicationError(error, type="WebhookSecretMissing")
        try:
            await check_webhook_target(delivery.url, self._allow_private)
        except (UnsafeWebhookTarget, OSError) as exc:
            error = str(exc) or type(exc).__name__
            await self._record(delivery, "failed", attempt, None, error)
            raise ApplicationError(error, type="WebhookTargetRefused", non_retryable=True) from exc
        content = json.dumps(delivery.body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery.delivery_id}
        if delivery.authentication_method == "signature":
            headers[SIGNATURE_HEADER] = sign(secret.encode(), int(time.time()), content)
        else:
            headers["Authorization"] = f"Bearer {secret}"
        try:
            response = await self._http.post(delivery.url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            await self._record(delivery, "pending", attempt, None, error)
            raise ApplicationError(f"POST {delivery.url} failed: {error}", type="WebhookUnreachable") from exc
        if delivered(response.status_code):
            await self._record(delivery, "delivered", attempt, response.status_code, None)
            return WebhookAttempt(status_code=response.status_code, attempt=attempt)
        # Only the status: a receiver's answer body is not ours to store or show to staff.
        error = f"HTTP {response.status_code}"
        if not worth_retrying(response.status_code):
            await self._record(delivery, "failed", attempt, response.status_code, error)
            raise ApplicationError(
                f"the receiver refused the award: {error}", type="WebhookRefused", non_retryable=True
            )
        await self._record(delivery, "pending", attempt, response.status_code, error)
        raise ApplicationError(
            f"the receiver did not take the award: {error}",
            type="WebhookNotTaken",
            next_retry_delay=retry_after(response, delivery.maximum_retry_interval),
        )

    @activity.defn
    async def record_webhook_outcome(self, failure: WebhookFailure) -> None:
        """Mark a delivery given up on (the workflow calls this once retries are exhausted)."""
        await record_delivery_failure(
            self._engine,
            delivery_id=failure.delivery_id,
            user_id=failure.user_id,
            badge_id=failure.badge_id,
            url=failure.url,
            error=failure.error,
        )

    async def _secret(self, badge_id: str) -> str | None:
        cached = self._secrets.get(badge_id)
        if cached is not None and time.monotonic() - cached[1] < SECRET_CACHE_SECONDS:
            return cached[0]
        secret = await badge_webhook_secret(self._engine, self._keys, badge_id)
        if secret is not None:
            self._secrets[badge_id] = (secret, time.monotonic())
        return secret

    async def _record(
        self, delivery: WebhookDeliveryInput, status: str, attempt: int, status_code: int | None, error: str | None
    ) -> None:
        await record_delivery_attempt(
            self._engine,
            delivery_id=delivery.delivery_id,
            user_id=delivery.user_id,
            badge_id=delivery.badge_id,
            url=delivery.url,
            status=status,
            attempt=attempt,
            status_code=status_code,
            error=error,
        )


def retry_after(response: httpx.Response, cap: timedelta) -> timedelta | None:
    """A receiver's `Retry-After` in seconds (429, 503), if it sent one; the retry policy's own
    backoff applies otherwise. Capped at the policy's maximum interval."""
    value = response.headers.get("Retry-After", "")
    if not value.isascii() or not value.isdigit() or int(value) == 0:
        return None
    return min(timedelta(seconds=int(value)), cap)
