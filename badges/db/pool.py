"""A psycopg connection pool for the hand-written statements: the hot paths (event intake,
progress writes, the outbox tail, bank sync) and units of work that share one psycopg transaction.

Measured here, a one-statement autocommit round trip through it costs about a tenth of the CPU
of the same statement in an SQLAlchemy async transaction (bench/realtime.py, bench/RESULTS.md), and the
event path runs several per event. Everything else is SQLAlchemy Core on the engine (`engine.py`).
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from badges.config import Settings


async def open_pool(
    libpq_url: str, *, max_size: int = 20, min_size: int = 2, wait_seconds: float = 30.0
) -> AsyncConnectionPool:
    """Open, with `min_size` connections made. A caller that finds all `max_size` in use waits up
    to `wait_seconds` for one (then `PoolTimeout`: the API answers 503); one the server refuses
    while the pool grows is tried again in the background, the caller still waiting."""
    pool = AsyncConnectionPool(
        libpq_url,
        min_size=min(min_size, max_size),
        max_size=max_size,
        kwargs={"autocommit": True},
        timeout=wait_seconds,
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    return pool


async def open_process_pool(
    settings: Settings, *, min_size: int = 2, max_size: int | None = None
) -> AsyncConnectionPool:
    """An API or worker process's pool, within its share of PostgreSQL's connections
    (`db_pool_size` unless `max_size` says more; docs/deployment.md, The PostgreSQL connection budget)."""
    return await open_pool(
        settings.libpq_url,
        max_size=max_size or settings.db_pool_size,
        min_size=min_size,
        wait_seconds=settings.db_pool_wait_seconds,
    )
