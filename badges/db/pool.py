"""A psycopg connection pool for the hand-written statements: the hot paths (event intake,
progress writes, the outbox tail, bank sync) and units of work that share one psycopg transaction.

Measured here, a one-statement autocommit round trip through it costs about a tenth of the CPU
of the same statement in an SQLAlchemy async transaction (bench/realtime.py, bench/RESULTS.md), and the
event path runs several per event. Everything else is SQLAlchemy Core on the engine (`engine.py`).
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


async def open_pool(libpq_url: str, *, max_size: int = 20) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        libpq_url,
        min_size=2,
        max_size=max_size,
        kwargs={"autocommit": True},
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    return pool
