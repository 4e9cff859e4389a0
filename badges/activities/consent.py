"""`record_consent`: project one consent change into `consents`, announce it as an insight, audit
it, and, when a grant ends (revoked or expired), delete the data only that scope justified: all
in one transaction with the outbox row and its NOTIFY."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from badges.db.audit import append_audit
from badges.db.consents import delete_scope_data, lock_member, upsert_consent
from badges.db.outbox import append_insight
from badges.domain.identity import consent_workflow_id
from badges.messages.consent import ConsentChange


class ConsentActivities:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @activity.defn
    async def record_consent(self, change: ConsentChange) -> None:
        payload = {
            "type": "consent",
            "scope": change.scope,
            "status": change.status,
            "expiresAt": change.expires_at.isoformat(),
        }
        async with self._pool.connection() as conn, conn.transaction():
            # Lock order: the member's row, then the outbox lock, then the audit lock. The row
            # lock serialises this with a demographics write (which takes it first too) and an
            # erasure (whose DELETE waits for it); NO KEY UPDATE lets progress writes (which hold
            # the outbox lock and need a KEY SHARE on the row) through.
            await lock_member(conn, change.user_id)
            await append_insight(conn, change.user_id, payload)
            await upsert_consent(
                conn,
                change.user_id,
                change.scope,
                purpose=change.purpose,
                granted_at=change.granted_at,
                expires_at=change.expires_at,
                revoked_at=change.revoked_at,
            )
            deleted = 0
            if change.status in ("revoked", "expired"):
                deleted = await delete_scope_data(conn, change.user_id, change.scope)
            if change.status != "expiring":  # a reminder changes nothing
                by_member = change.status in ("granted", "revoked")
                await append_audit(
                    conn,
                    actor="member" if by_member else "system",
                    actor_role="user" if by_member else "system",
                    action=f"consent.{change.status}",
                    subject=change.user_id,
                    resource=consent_workflow_id(change.user_id),
                    # Never the member's own purpose text: the audit log is append-only and
                    # outlives an erasure.
                    purpose="consent change" if by_member else "consent expiry",
                    details={
                        "scope": change.scope,
                        "expiresAt": change.expires_at.isoformat(),
                        "rowsDeleted": deleted,
                    },
                )
