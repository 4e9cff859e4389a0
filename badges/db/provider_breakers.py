"""The breaker per bank provider, as every worker shares it: one row per provider, locked
(`SELECT … FOR UPDATE`) while `domain/provider_breaker.py` decides, so two workers never both
probe or both open it. A closed breaker with nothing failing is not written on a success, so the
sync path's cost is one read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Boolean, DateTime, Float, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.domain.provider_breaker import Admission, BreakerPolicy, BreakerState, admit, failed, succeeded

T = TypeVar("T")


class ProviderBreaker(Base):
    __tablename__ = "provider_breakers"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    open: Mapped[bool] = mapped_column(Boolean, server_default="false")
    failing: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    cool_down_seconds: Mapped[float | None] = mapped_column(Float)
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    probing: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


async def _change(
    pool: AsyncConnectionPool, provider: str, decide: Callable[[BreakerState], tuple[BreakerState, T]]
) -> T:
    """Apply `decide` to the provider's breaker under its row lock; write only what changed."""
    async with pool.connection() as connection, connection.transaction():
        row = await (
            await connection.execute(
                "SELECT open, failing, cool_down_seconds, retry_at, probing, opened_at"
                " FROM provider_breakers WHERE provider = %s FOR UPDATE",
                (provider,),
            )
        ).fetchone()
        state = _state(row) if row else BreakerState()
        new, answer = decide(state)
        if new != state:
            await connection.execute(
                "INSERT INTO provider_breakers"
                " (provider, open, failing, cool_down_seconds, retry_at, probing, opened_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, now())"
                " ON CONFLICT (provider) DO UPDATE SET open = excluded.open, failing = excluded.failing,"
                " cool_down_seconds = excluded.cool_down_seconds, retry_at = excluded.retry_at,"
                " probing = excluded.probing, opened_at = excluded.opened_at, updated_at = now()",
                (
                    provider,
                    new.open,
                    sorted(new.failing),
                    new.cool_down.total_seconds() if new.cool_down else None,
                    new.retry_at,
                    new.probing,
                    new.opened_at,
                ),
            )
        return answer


def _state(row: Any) -> BreakerState:
    is_open, failing, cool_down, retry_at, probing, opened_at = row
    return BreakerState(
        open=is_open,
        failing=frozenset(failing or ()),
        cool_down=timedelta(seconds=cool_down) if cool_down is not None else None,
        retry_at=retry_at,
        probing=probing,
        opened_at=opened_at,
    )


async def admit_sync(
    pool: AsyncConnectionPool, provider: str, connection: str, now: datetime, policy: BreakerPolicy
) -> Admission:
    """May this connection's sync call the provider now? (It may be the probe.)"""
    async with pool.connection() as db:  # the common case, closed: a read without a lock
        row = await (await db.execute("SELECT open FROM provider_breakers WHERE provider = %s", (provider,))).fetchone()
    if row is None or not row[0]:
        return Admission(True)
    return await _change(pool, provider, lambda state: admit(state, connection, now, policy))


async def record_provider_failure(
    pool: AsyncConnectionPool, provider: str, connection: str, now: datetime, policy: BreakerPolicy
) -> bool:
    """A sync failed with an outage or rate limit; True when that opened (or reopened) the breaker."""
    return await _change(pool, provider, lambda state: failed(state, connection, now, policy))


async def record_provider_success(pool: AsyncConnectionPool, provider: str, connection: str) -> None:
    """A sync went through: the provider's breaker closes (written only if it was not already clear)."""
    async with pool.connection() as db:
        row = await (
            await db.execute(
                "SELECT open OR cardinality(failing) > 0 FROM provider_breakers WHERE provider = %s", (provider,)
            )
        ).fetchone()
    if row is not None and row[0]:
        await _change(pool, provider, lambda state: (succeeded(state, connection), None))


async def provider_breakers(pool: AsyncConnectionPool) -> dict[str, BreakerState]:
    """Every provider's breaker, for operators (metrics)."""
    async with pool.connection() as db:
        rows = await (
            await db.execute(
                "SELECT provider, open, failing, cool_down_seconds, retry_at, probing, opened_at FROM provider_breakers"
            )
        ).fetchall()
    return {row[0]: _state(row[1:]) for row in rows}
