"""The async SQLAlchemy engine, made once per process from the settings."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from badges.config import Settings


def make_engine(
    database_url: str, *, pool_size: int = 10, max_overflow: int = 10, wait_seconds: float = 30.0
) -> AsyncEngine:
    """`wait_seconds`: how long a checkout waits for a connection once `pool_size + max_overflow`
    are in use, before it raises (the API answers 503)."""
    return create_async_engine(
        database_url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=wait_seconds, pool_pre_ping=True
    )


def process_engine(settings: Settings) -> AsyncEngine:
    """An API or worker process's engine: at most `db_engine_pool_size` connections, none beyond
    (an overflow connection would be one more the server may refuse in a rolling restart's peak:
    docs/deployment.md, The PostgreSQL connection budget); a checkout that finds them all in use waits."""
    return make_engine(
        settings.database_url,
        pool_size=settings.db_engine_pool_size,
        max_overflow=0,
        wait_seconds=settings.db_pool_wait_seconds,
    )


async def ping(engine: AsyncEngine) -> None:
    """One round trip to PostgreSQL (readiness): raises when it does not answer."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
