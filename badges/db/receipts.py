"""Event receipts on the hot path: claim an event id for a member, then mark it handed over."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

# One statement: insert the receipt, or find the one already there. The SELECT sees the snapshot
# from before the INSERT, so for a repeated id it reads the existing row.
CLAIM = """
WITH claimed AS (
    INSERT INTO event_receipts (user_id, event_id) VALUES (%(user_id)s, %(event_id)s)
    ON CONFLICT (user_id, event_id) DO NOTHING
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM claimed),
       (SELECT signalled_at IS NOT NULL FROM event_receipts
         WHERE user_id = %(user_id)s AND event_id = %(event_id)s)
"""

MARK_SIGNALLED = """
UPDATE event_receipts SET signalled_at = now()
 WHERE user_id = %(user_id)s AND event_id = %(event_id)s AND signalled_at IS NULL
"""


@dataclass(frozen=True)
class Claim:
    new: bool
    # True when an earlier request with this id already reached Temporal.
    already_signalled: bool


async def claim_event(pool: AsyncConnectionPool, user_id: uuid.UUID, event_id: str) -> Claim:
    async with pool.connection() as connection:
        cursor = await connection.execute(CLAIM, {"user_id": user_id, "event_id": event_id})
        new, signalled = await cursor.fetchone()  # type: ignore[misc]
    return Claim(new=bool(new), already_signalled=bool(signalled))


async def mark_signalled(pool: AsyncConnectionPool, user_id: uuid.UUID, event_id: str) -> None:
    async with pool.connection() as connection:
        await connection.execute(MARK_SIGNALLED, {"user_id": user_id, "event_id": event_id})
