"""`rotate_master_keys`: take the steps of the master keys' life that are due (`db/master_keys.py`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from badges.db.keys import MasterKeys
from badges.db.master_keys import KeyPolicy, rotate_due
from badges.messages.master_keys import MasterKeyRotation

log = logging.getLogger("badges.master_keys")


class MasterKeyActivities:
    def __init__(self, pool: AsyncConnectionPool, master: MasterKeys, policy: KeyPolicy) -> None:
        self._pool = pool
        self._master = master
        self._policy = policy

    @activity.defn
    async def rotate_master_keys(self) -> MasterKeyRotation:
        report = await rotate_due(self._pool, self._master, self._policy, datetime.now(UTC))
        if report.rotation_due or report.destruction_due:
            # Keys from the environment, or a ring this worker cannot write: an operator's turn.
            log.warning(
                "master keys: rotation due %s, destruction due %s, to be done by hand (docs/operations.md): %s",
                report.rotation_due,
                report.destruction_due,
                report.ring_unwritable or "keys from BADGES_MASTER_KEYS",
            )
        if report.error:
            log.error("master key rotation stopped: %s", report.error)
        return MasterKeyRotation(
            active=report.active,
            rotated_from=report.rotated_from,
            rewrapped=report.rewrapped,
            retired=report.retired,
            destroyed=report.destroyed,
            rotation_due=report.rotation_due,
            destruction_due=report.destruction_due,
            busy=report.busy,
            ring_unwritable=report.ring_unwritable,
            error=report.error,
        )
