"""A member's batch of progress and awards, written with its outbox rows in one transaction.

Sent as one multi-statement script, so one round trip. The writes are idempotent by content;
the advisory lock, held to commit, makes outbox ids visible in the order they were taken.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from badges.db.outbox import OUTBOX_CHANNEL, OUTBOX_LOCK_KEY
from badges.domain.rules import Award, ProgressUpdate

LOCK_OUTBOX = f"SELECT pg_advisory_xact_lock({OUTBOX_LOCK_KEY})"

# A later batch wins, even when a value falls (a broken streak) or a definition's new version
# changes the target; only what changed is announced. The same batch written twice (a retried
# activity) announces nothing the second time; a retried workflow task that holds more events
# than its first attempt writes the same batch number with newer values, and those win. A stale
# write from an earlier batch never moves anything back.
WRITE_PROGRESS = """
WITH written AS (
    INSERT INTO badge_progress AS current (user_id, badge_id, value, target, version, batch_seq)
    SELECT {user_id}, r."badgeId", r.value, r.target, coalesce(r.version, 1), {batch_seq}
      FROM jsonb_to_recordset({items}::jsonb) AS r("badgeId" text, value int, target int, version int)
    ON CONFLICT (user_id, badge_id)
    DO UPDATE SET value = excluded.value, target = excluded.target, version = excluded.version,
                  batch_seq = excluded.batch_seq, updated_at = now()
    WHERE excluded.batch_seq >= current.batch_seq
      AND (current.value, current.target, current.version)
          IS DISTINCT FROM (excluded.value, excluded.target, excluded.version)
    RETURNING badge_id
)
INSERT INTO outbox (user_id, kind, payload)
SELECT {user_id}, 'progress', item.payload
  FROM jsonb_array_elements({items}::jsonb) WITH ORDINALITY AS item(payload, n)
  JOIN written ON written.badge_id = item.payload->>'badgeId'
 ORDER BY item.n
"""

WRITE_AWARDS = """
WITH granted AS (
    INSERT INTO awards (user_id, badge_id, instance, version, awarded_at)
    SELECT {user_id}, r."badgeId", r.instance, coalesce(r.version, 1), r."awardedAt"
      FROM jsonb_to_recordset({items}::jsonb) AS r("badgeId" text, instance text, version int, "awardedAt" timestamptz)
    ON CONFLICT (user_id, badge_id, instance) DO NOTHING
    RETURNING badge_id, instance
)
INSERT INTO outbox (user_id, kind, payload)
SELECT {user_id}, 'award', item.payload
  FROM jsonb_array_elements({items}::jsonb) WITH ORDINALITY AS item(payload, n)
  JOIN granted ON granted.badge_id = item.payload->>'badgeId' AND granted.instance = item.payload->>'instance'
 ORDER BY item.n
"""


def batch_script(
    user_id: uuid.UUID, batch_seq: int, progress: Sequence[ProgressUpdate], awards: Sequence[Award]
) -> sql.Composed:
    """The batch as one multi-statement script: PostgreSQL runs it as a single transaction in
    one round trip."""
    user = sql.Literal(str(user_id))
    statements: list[sql.Composable] = [sql.SQL(LOCK_OUTBOX)]
    for template, items in ((WRITE_PROGRESS, progress), (WRITE_AWARDS, awards)):
        if items:
            document = json.dumps([item.model_dump(mode="json", by_alias=True) for item in items])
            statements.append(
                sql.SQL(template).format(user_id=user, batch_seq=sql.Literal(batch_seq), items=sql.Literal(document))
            )
    statements.append(sql.SQL(f"NOTIFY {OUTBOX_CHANNEL}"))
    return sql.SQL(";\n").join(statements)


async def apply_batch(
    pool: AsyncConnectionPool,
    user_id: uuid.UUID,
    batch_seq: int,
    progress: Sequence[ProgressUpdate],
    awards: Sequence[Award],
) -> None:
    """Write one batch. Idempotent by content: a value already reached and an award already held
    are neither written nor announced again."""
    if not progress and not awards:
        return
    async with pool.connection() as connection:
        await connection.execute(batch_script(user_id, batch_seq, progress, awards))
