"""`deliver_webhook` and `record_webhook_outcome`: POST an award to a badge's webhook URL, signed
or with a bearer token, and keep the delivery row saying how it went."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

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


# IPv6 ranges that carry an IPv4 address to a translator or tunnel: a NAT64 gateway reaches any
# IPv4 address (our own network included), and `is_global` calls these ranges public.
NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether the worker may connect to `address`: globally routable and unicast, and for IPv6
    no form that hands an IPv4 address on (mapped, compatible, NAT64), nor a 6to4 or Teredo
    address wrapping an IPv4 address that is not public itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None or address in IPV4_COMPATIBLE or any(address in net for net in NAT64):
            return False
        if address.is_site_local:
            return False
        if address.sixtofour is not None and not is_public_address(address.sixtofour):
            return False
        if address.teredo is not None and not all(is_public_address(end) for end in address.teredo):
            return False
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class WebhookTarget:
    """A webhook URL and the addresses its host resolved to, each one checked: the delivery
    connects to these and never asks DNS again."""

    url: httpx.URL
    addresses: tuple[str, ...]


async def check_webhook_target(url: str, allow_private: bool) -> WebhookTarget:
    """Resolve the URL's host once and refuse http and hosts that resolve to any address that is
    not public (`is_public_address`), so a badge definition cannot make the worker call internal
    services (SSRF). `allow_private` (local development and tests) lifts both rules; the
    addresses are still pinned. Raises `UnsafeWebhookTarget`, or `OSError` when the host does not
    resolve."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UnsafeWebhookTarget(f"not a webhook URL: {url}") from exc
    if target.scheme not in ("https", "http" if allow_private else "https") or not target.raw_host:
        raise UnsafeWebhookTarget(f"webhook URLs must be https: {url}")
    host = target.raw_host.decode("ascii")
    port = target.port or (443 if target.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not allow_private and not is_public_address(address):
            raise UnsafeWebhookTarget(f"webhook host {host} resolves to a non-public address")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise UnsafeWebhookTarget(f"webhook host {host} resolves to no address")
    return WebhookTarget(url=target, addresses=tuple(addresses))


async def post_pinned(
    http: httpx.AsyncClient, target: WebhookTarget, content: bytes, headers: dict[str, str]
) -> httpx.Response:
    """POST to the checked addresses in turn (the next one only when a connection cannot be made)
    while TLS and HTTP still see the URL's host: the request goes to the address as its URL, with
    the host as the `sni_hostname` extension (httpcore sends it as SNI and checks the certificate
    against it) and as the `Host` header. `Connection: close`, because httpx pools connections by
    the address: a connection verified for one host must not carry another host's secret."""
    pinned_headers = {**headers, "Host": target.url.netloc.decode("ascii"), "Connection": "close"}
    extensions = {"sni_hostname": target.url.raw_host.decode("ascii")}
    failure: httpx.TransportError | None = None
    for address in target.addresses:
        try:
            return await http.post(
                target.url.copy_with(host=address), content=content, headers=pinned_headers, extensions=extensions
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            failure = exc
    assert failure is not None  # `check_webhook_target` answers at least one address
    raise failure


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
            target = await check_webhook_target(delivery.url, self._allow_private)
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
            response = await post_pinned(self._http, target, content, headers)
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
