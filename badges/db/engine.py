"""The async SQLAlchemy engine, made once per process from the settings."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(database_url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True)


async def ping(engine: AsyncEngine) -> None:
    """One round trip to PostgreSQL (readiness): raises when it does not answer."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
