"""A member's batch of progress and awards, written with its outbox rows in one transaction.

Sent as one pipelined round trip. The batch's claim row makes a retried write a no-op; the
advisory lock, held to commit, makes outbox ids visible in the order they were taken.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from badges.db.outbox import OUTBOX_CHANNEL, OUTBOX_LOCK_KEY
from badges.domain.rules import Award, ProgressUpdate

CLAIM_BATCH = "INSERT INTO applied_batches (user_id, batch_seq) VALUES (%(user_id)s, %(batch_seq)s)"
CLAIM_CONSTRAINT = "pk_applied_batches"

LOCK_OUTBOX = f"SELECT pg_advisory_xact_lock({OUTBOX_LOCK_KEY})"

WRITE_PROGRESS = """
WITH written AS (
    INSERT INTO badge_progress (user_id, badge_id, value, target)
    SELECT %(user_id)s, r."badgeId", r.value, r.target
      FROM jsonb_to_recordset(%(items)s) AS r("badgeId" text, value int, target int)
    ON CONFLICT (user_id, badge_id)
    DO UPDATE SET value = excluded.value, target = excluded.target, updated_at = now()
)
INSERT INTO outbox (user_id, kind, payload)
SELECT %(user_id)s, 'progress', item.payload
  FROM jsonb_array_elements(%(items)s) WITH ORDINALITY AS item(payload, n)
 ORDER BY item.n
"""

WRITE_AWARDS = """
WITH granted AS (
    INSERT INTO awards (user_id, badge_id, instance, awarded_at)
    SELECT %(user_id)s, r."badgeId", r.instance, r."awardedAt"
      FROM jsonb_to_recordset(%(items)s) AS r("badgeId" text, instance text, "awardedAt" timestamptz)
    ON CONFLICT (user_id, badge_id, instance) DO NOTHING
    RETURNING badge_id, instance
)
INSERT INTO outbox (user_id, kind, payload)
SELECT %(user_id)s, 'award', item.payload
  FROM jsonb_array_elements(%(items)s) WITH ORDINALITY AS item(payload, n)
  JOIN granted ON granted.badge_id = item.payload->>'badgeId' AND granted.instance = item.payload->>'instance'
 ORDER BY item.n
"""


async def apply_batch(
    pool: AsyncConnectionPool,
    user_id: uuid.UUID,
    batch_seq: int,
    progress: Sequence[ProgressUpdate],
    awards: Sequence[Award],
) -> bool:
    """Write one batch; False when it was written before (a retry after a lost reply)."""
    params = {"user_id": user_id, "batch_seq": batch_seq}
    try:
        async with pool.connection() as connection, connection.pipeline(), connection.transaction():
            await connection.execute(CLAIM_BATCH, params)
            if progress or awards:
                await connection.execute(LOCK_OUTBOX)
            if progress:
                items = Jsonb([update.model_dump(mode="json", by_alias=True) for update in progress])
                await connection.execute(WRITE_PROGRESS, {**params, "items": items})
            if awards:
                items = Jsonb([award.model_dump(mode="json", by_alias=True) for award in awards])
                await connection.execute(WRITE_AWARDS, {**params, "items": items})
            if progress or awards:
                await connection.execute(f"NOTIFY {OUTBOX_CHANNEL}")
    except psycopg.errors.UniqueViolation as error:
        if error.diag.constraint_name == CLAIM_CONSTRAINT:
            return False
        raise
    return True
