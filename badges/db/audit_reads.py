"""A member's reads of their own data, audited at most once per member, action and resource in
each counting window (a minute): the first read of the window appends its record, later ones in
it are covered by that record. So however often a member reads, they add at most one record a
minute per resource to the audit chain, whose appends are serialised by one lock for everyone
(`audit.py`, unchanged: this module only decides whether a read is appended).

Hand-written on the psycopg pool: the window's counter (`rate_limits.py`) and the record commit in
one transaction, so a read whose record failed to commit leaves no mark and the next read is
recorded; a read that is covered takes no audit lock at all.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from badges.db.audit import append_audit
from badges.db.rate_limits import Take, take


async def record_member_read(pool: AsyncConnectionPool, window: Take, **record: Any) -> bool:
    """Append the record (the keyword arguments of `append_audit`) if this is the first read in
    `window` (a counter of amount 1); whether it was appended."""
    async with pool.connection() as connection, connection.transaction():
        if not (await take(connection, window)).allowed:
            return False
        await append_audit(connection, **record)
        return True
