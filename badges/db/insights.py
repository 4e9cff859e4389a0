"""A member's behaviour evaluation: what it reads (their categorised transactions, accounts and
connections, in the member's time zone) and what it keeps (one sealed document a member, newest
evaluation wins, read back by the dashboard; beside it the keyed digests of the notices it gave,
which the next evaluation compares its own with).

Hand-written on the psycopg pool: one member's whole history is read in one statement per table
(no unsealing: figures need amounts, dates, categories and the merchant's keyed digest only), and
an evaluation opens nothing of the previous one's either (its notices are known by digest).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import BigInteger, DateTime, ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.db.keys import DIGEST_BYTES, KeyStore
from badges.db.outbox import append_insight


class MemberInsights(Base):
    __tablename__ = "member_insights"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # `KeyStore.digest` of each notice's key (DIGEST_BYTES each, concatenated); NULL for rows kept
    # before digests were (their notices are in `sealed`).
    notice_digests: Mapped[bytes | None] = mapped_column(LargeBinary)


@dataclass(frozen=True, slots=True)
class AccountRow:
    account_id: str
    type: str
    subtype: str | None
    balance_minor: int | None
    provider: str = "plaid"  # its connection's


@dataclass(frozen=True, slots=True)
class TransactionRow:
    transaction_id: str
    account_id: str
    day: date
    amount_minor: int
    category: str | None
    confidence: float | None
    merchant_key: bytes | None
    pending: bool
    # What the provider said, kept beside a member's correction.
    source: str | None = None
    provider_detailed: str | None = None
    provider_primary: str | None = None
    provider_level: str | None = None
    mcc: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    connection_id: uuid.UUID
    status: str
    last_synced_at: datetime | None
    last_error: str | None = None


@dataclass(frozen=True)
class BehaviourInputs:
    timezone: str
    accounts: list[AccountRow]
    transactions: list[TransactionRow]
    connections: list[ConnectionRow]


async def behaviour_inputs(pool: AsyncConnectionPool, user_id: uuid.UUID) -> BehaviourInputs:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT coalesce(timezone, 'UTC') FROM members WHERE id = %s", (user_id,))
        row = await cursor.fetchone()
        timezone = str(row[0]) if row else "UTC"
        cursor = await conn.execute(
            "SELECT a.account_id, a.type, a.subtype, a.balance_minor, c.provider"
            " FROM bank_accounts a JOIN bank_connections c ON c.id = a.connection_id WHERE a.user_id = %s",
            (user_id,),
        )
        accounts = [AccountRow(*row) for row in await cursor.fetchall()]
        cursor = await conn.execute(
            "SELECT transaction_id, account_id, posted_date, amount_minor, category, category_confidence,"
            " merchant_key, pending, category_source, category_detailed, category_primary,"
            " category_confidence_level, mcc"
            " FROM bank_transactions WHERE user_id = %s ORDER BY posted_date, transaction_id",
            (user_id,),
        )
        transactions = [TransactionRow(*row) for row in await cursor.fetchall()]
        cursor = await conn.execute(
            "SELECT id, status, last_synced_at, last_error FROM bank_connections WHERE user_id = %s", (user_id,)
        )
        connections = [ConnectionRow(*row) for row in await cursor.fetchall()]
    return BehaviourInputs(timezone, accounts, transactions, connections)


async def store_insights(
    pool: AsyncConnectionPool,
    keys: KeyStore,
    user_id: uuid.UUID,
    seq: int,
    computed_at: datetime,
    document: Any,
    notice_digests: Sequence[bytes] = (),
) -> bool:
    """Keep an evaluation's findings, sealed with the member's key, and the digests of its notices'
    keys (`KeyStore.digests`), unless a later evaluation is kept already. False when it was not
    kept (older, or the member is gone)."""
    sealed = await keys.seal(str(user_id), json.dumps(document, sort_keys=True, default=str).encode())
    digests = b"".join(sorted(set(notice_digests)))
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "INSERT INTO member_insights (user_id, seq, computed_at, sealed, notice_digests)"
            " SELECT %(user)s, %(seq)s, %(at)s, %(sealed)s, %(digests)s"
            " WHERE EXISTS (SELECT 1 FROM members WHERE id = %(user)s)"
            " ON CONFLICT (user_id) DO UPDATE SET seq = excluded.seq, computed_at = excluded.computed_at,"
            " sealed = excluded.sealed, notice_digests = excluded.notice_digests"
            " WHERE member_insights.seq < excluded.seq",
            {"user": user_id, "seq": seq, "at": computed_at, "sealed": sealed, "digests": digests},
        )
        return cursor.rowcount == 1


async def given_notices(pool: AsyncConnectionPool, keys: KeyStore, user_id: uuid.UUID) -> frozenset[bytes]:
    """The digests of the notices the member's newest evaluation gave (none: never evaluated).
    Nothing is opened, but for a row kept before digests were: its sealed document, once."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT notice_digests, CASE WHEN notice_digests IS NULL THEN sealed END FROM member_insights"
            " WHERE user_id = %s",
            (user_id,),
        )
        row = await cursor.fetchone()
    if row is None:
        return frozenset()
    digests, sealed = row
    if digests is not None:
        digests = bytes(digests)
        return frozenset(digests[start : start + DIGEST_BYTES] for start in range(0, len(digests), DIGEST_BYTES))
    before = json.loads(await keys.unseal(bytes(sealed))).get("notices", [])
    return frozenset(await keys.digests(str(user_id), [notice["key"] for notice in before if "key" in notice]))


async def member_insights(pool: AsyncConnectionPool, keys: KeyStore, user_id: uuid.UUID) -> tuple[datetime, Any] | None:
    """When the member's newest evaluation ran, and what it found (None: never evaluated)."""
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT computed_at, sealed FROM member_insights WHERE user_id = %s", (user_id,))
        row = await cursor.fetchone()
    if row is None:
        return None
    return row[0], json.loads(await keys.unseal(row[1]))


async def publish_insights(pool: AsyncConnectionPool, user_id: uuid.UUID, payloads: list[dict[str, Any]]) -> None:
    """Put insights on the member's stream (the outbox), in one transaction."""
    if not payloads:
        return
    async with pool.connection() as conn, conn.transaction():
        for payload in payloads:
            await append_insight(conn, user_id, payload)
