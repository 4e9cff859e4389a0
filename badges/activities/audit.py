"""`checkpoint_audit_log`: sign a checkpoint of the audit log's chain and store it outside the
database (`db/audit_checkpoints.py`)."""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from badges.db.audit_checkpoints import (
    AnchorKeys,
    AuditChainBrokenError,
    CheckpointError,
    CheckpointStore,
    write_checkpoint,
)
from badges.messages.audit import AuditCheckpointResult


class AuditAnchorActivities:
    def __init__(self, pool: AsyncConnectionPool, store: CheckpointStore, keys: AnchorKeys | None) -> None:
        self._pool = pool
        self._store = store
        self._keys = keys

    @activity.defn
    async def checkpoint_audit_log(self) -> AuditCheckpointResult:
        """Retried when another writer took the checkpoint's number (the next try follows it); a
        chain or a checkpoint store that cannot be trusted fails for good, signing nothing."""
        if self._keys is None:
            raise ApplicationError(
                "audit anchoring is not configured on this worker (BADGES_AUDIT_ANCHOR_KEYS)",
                type="AuditAnchorNotConfigured",
                non_retryable=True,
            )
        try:
            checkpoint = await write_checkpoint(self._pool, self._store, self._keys, datetime.now(UTC))
        except AuditChainBrokenError as error:
            result = error.result
            raise ApplicationError(
                str(error),
                {"first_bad_id": result.first_bad_id, "first_bad_checkpoint": result.first_bad_checkpoint},
                type="AuditChainBroken",
                non_retryable=True,
            ) from error
        except CheckpointError as error:
            raise ApplicationError(
                error.reason, {"checkpoint": error.checkpoint}, type="AuditCheckpointStore", non_retryable=True
            ) from error
        return AuditCheckpointResult(
            checkpoint=checkpoint.seq, audit_id=checkpoint.audit_id, records=checkpoint.records
        )
