"""Rate limits that hold across every API process: each check is one statement on the shared
counters in PostgreSQL (`db/rate_limits.py`), the deployment's one store, so N replicas still give
a member, an integration or a source address the configured rate, not N times it.

Buckets are named by what is limited, the rate (so a changed setting starts afresh rather than
reading counts kept under another period) and whose: `member-events/120per60s/<uuid>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import ipaddress
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import limits
from psycopg_pool import AsyncConnectionPool
from starlette.requests import HTTPConnection

from badges.api.problems import DATABASE_UNAVAILABLE, Problem
from badges.db.rate_limits import MAX_BUCKET_LENGTH, Take, WindowCount, sweep, take_from
from badges.domain.rate_windows import Rate, retry_after, window_position

log = logging.getLogger("badges.throttle")
SWEEP_EVERY_SECONDS = 60.0
# Long keys (an integration id, say) are hashed, so every bucket fits its column.
MAX_KEY_LENGTH = 128


@functools.lru_cache(maxsize=64)
def parse_rate(text: str) -> Rate:
    """A rate in the `limits` notation (`120/minute`, `3 per day`, `10/2 hours`)."""
    item = limits.parse(text)
    return Rate(amount=item.amount, period_seconds=int(item.get_expiry()), label=str(item))


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until a hit would be allowed again (0 when this one was)


def source_address(connection: HTTPConnection) -> str:
    """Whom an unauthenticated request is counted against: the client's address as uvicorn saw it
    (behind a proxy, `--forwarded-allow-ips` makes that the forwarded client), IPv6 by its /64, as
    one subscriber usually holds a whole /64 and could otherwise step through it."""
    host = connection.client.host if connection.client else ""
    return address_key(host)


def address_key(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Throttle:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._sweeper: asyncio.Task[None] | None = None

    async def check(self, name: str, rate: Rate, key: str, *, sliding: bool = True) -> Decision:
        """Count one hit on `name` for `key` at `rate`, and whether it was allowed."""
        now = time.time()
        count = await take_from(self._pool, self.take(name, rate, key, now, sliding=sliding))
        return self.decide(rate, now, count, sliding=sliding)

    @staticmethod
    def decide(rate: Rate, now: float, count: WindowCount, *, sliding: bool = True) -> Decision:
        """The decision on a hit taken at `now` (`take`), from its window's count: counted here
        (`check`), or in a statement that does more with it (an event's claim, `EventIntake`)."""
        if count.allowed:
            return Decision(True, 0)
        position = window_position(now, rate.period_seconds, sliding=sliding)
        return Decision(False, retry_after(rate, now, position, count.previous_hits, count.hits))

    @staticmethod
    def take(name: str, rate: Rate, key: str, now: float, *, sliding: bool = True) -> Take:
        position = window_position(now, rate.period_seconds, sliding=sliding)
        if len(key) > MAX_KEY_LENGTH:
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        bucket = f"{name}/{rate.amount}per{rate.period_seconds}s/{key}"[:MAX_BUCKET_LENGTH]
        # Kept while it can still count: its own window, then as the previous one.
        expires = position.start + 2 * rate.period_seconds
        return Take(
            bucket=bucket,
            start=position.start,
            period_seconds=rate.period_seconds,
            weight=position.previous_weight,
            amount=rate.amount,
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    async def enforce(self, name: str, rate: Rate, key: str, what: str) -> None:
        """Count one hit, or answer 429 `rate-limited` with `Retry-After` (`what`: "events per member")."""
        decision = await self.check(name, rate, key)
        if not decision.allowed:
            raise rate_limited(rate, what, decision.retry_after)

    def start_sweeping(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="rate-limit-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    async def _sweep_forever(self) -> None:
        """Every process sweeps expired windows now and then; two sweeping at once is harmless."""
        while True:
            await asyncio.sleep(SWEEP_EVERY_SECONDS)
            try:
                await sweep(self._pool)
            except DATABASE_UNAVAILABLE:
                log.warning("could not sweep expired rate-limit windows; trying again later", exc_info=True)


def rate_limited(rate: Rate, what: str, retry_after_seconds: int, **extensions: Any) -> Problem:
    return Problem(
        429,
        "rate-limited",
        f"Too many {what}: at most {rate}. Retry after {retry_after_seconds} s.",
        headers={"Retry-After": str(retry_after_seconds)},
        retry_after=retry_after_seconds,
        **extensions,
    )
