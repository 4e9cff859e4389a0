"""A member's reads of their own data, audited at most once per member, action and resource in
each counting window (a minute): the first read of the window appends its record, later ones in
it are covered by that record. So however often a member reads, they add at most one record a
minute per resource to the audit chain, whose appends are serialised by one lock for everyone
(`audit.py`, unchanged: this module only decides whether a read is appended).

Hand-written on the psycopg pool: the window's counter (`rate_limits.py`) and the record commit in
one transaction, so a read whose record failed to commit leaves no mark and the next read is
recorded. `MemberReadAudit` writes the first reads that arrive together in one such transaction
(`GroupCommit`): they share the audit lock and one commit, where each used to wait for the one
before it to reach the disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from badges.db.audit import append_audit
from badges.db.group_commit import GroupCommit, GroupCommitStats
from badges.db.rate_limits import Take, take

# The most reads one transaction records: the audit lock is held for all of them.
MAX_GROUP = 64


@dataclass(frozen=True, slots=True)
class MemberRead:
    window: Take  # the member's counting window for this action and resource
    record: dict[str, Any]  # the keyword arguments of `append_audit`


class MemberReadAudit:
    """Members' reads recorded as `record_member_read` does, those arriving together in one
    transaction."""

    def __init__(self, pool: AsyncConnectionPool, *, max_group: int = MAX_GROUP) -> None:
        self._group: GroupCommit[MemberRead, bool] = GroupCommit(
            pool, _record_reads, max_group=max_group, name="member-read-audit"
        )

    def stats(self) -> GroupCommitStats:
        return self._group.stats()

    async def record(self, window: Take, **record: Any) -> bool:
        """Whether the read was appended (the first in its window) or covered by an earlier one."""
        return await self._group.submit(MemberRead(window, record))


async def _record_reads(connection: AsyncConnection[Any], reads: Sequence[MemberRead]) -> list[bool]:
    appended = []
    async with connection.transaction():
        for read in reads:
            allowed = (await take(connection, read.window)).allowed
            if allowed:
                await append_audit(connection, **read.record)
            appended.append(allowed)
    return appended
