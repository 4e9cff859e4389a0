"""Bank connections, accounts and transactions, and members' category corrections. Access tokens,
account names and masks, descriptions and merchant names are sealed with the member's key
(`KeyStore.seal`), so erasure leaves them unreadable wherever a copy survives. A synced batch is
applied with its cursor in one transaction: either both are stored or neither.

Every transaction holds one programme category with its source (`provider`, `model`, `member`)
and confidence. A member's correction is kept per merchant: by `merchant_key`, a digest of the
transaction's normalised merchant (`merchant_label`) keyed by the member's own data key
(`KeyStore.digest`), so corrections match later transactions without any merchant name being
held in plaintext or opened on the sync path.

Hand-written on the psycopg pool: the sync writes are what bench/sync.py measures, the sync
activities hold only the pool, and `set_status` runs inside its caller's psycopg transaction
(with the member's outbox insight)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.db.keys import KeyStore
from badges.domain.banking import Account, Exchanged, Transaction
from badges.domain.categories import MEMBER_CONFIDENCE, Categorised, SpendingCategory, by_member, merchant_label


class BankConnection(Base):
    __tablename__ = "bank_connections"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[str] = mapped_column(String(128))
    institution_id: Mapped[str | None] = mapped_column(String(64))
    institution_name: Mapped[str | None] = mapped_column(String(200))
    access_token: Mapped[bytes] = mapped_column(LargeBinary)  # sealed
    status: Mapped[str] = mapped_column(String(16), server_default="syncing")
    cursor: Mapped[str | None] = mapped_column(Text)
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('syncing', 'active', 'degraded', 'login_required', 'disconnected')", name="status"),
        UniqueConstraint("provider", "item_id"),
    )


class BankLinkState(Base):
    """An OAuth `state` handed out with a TrueLayer authorisation URL, bound to the member who
    started linking: the code the redirect brings back is exchanged only with a state of that
    member, once, before `expires_at`. Only its SHA-256 is kept."""

    __tablename__ = "bank_link_states"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class BankAccount(Base):
    __tablename__ = "bank_accounts"

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bank_connections.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    name: Mapped[bytes] = mapped_column(LargeBinary)  # sealed
    mask: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed
    type: Mapped[str] = mapped_column(String(32))
    subtype: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    balance_minor: Mapped[int | None] = mapped_column(BigInteger)


class BankTransaction(Base):
    __tablename__ = "bank_transactions"

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bank_connections.id", ondelete="CASCADE"), primary_key=True
    )
    transaction_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(String(128))
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # positive: money in
    currency: Mapped[str] = mapped_column(String(3))
    posted_date: Mapped[date] = mapped_column(Date)
    authorized_date: Mapped[date | None] = mapped_column(Date)
    description: Mapped[bytes] = mapped_column(LargeBinary)  # sealed
    merchant_name: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed
    category_primary: Mapped[str | None] = mapped_column(String(64))
    category_detailed: Mapped[str | None] = mapped_column(String(96))
    pending: Mapped[bool] = mapped_column(Boolean)
    pending_transaction_id: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The programme's category (`SpendingCategory`), who decided it and how sure they are (0..1).
    # NULL only for rows synced before categories existed, until their connection's next sync.
    category: Mapped[str | None] = mapped_column(String(32))
    category_source: Mapped[str | None] = mapped_column(String(8))
    category_confidence: Mapped[float | None] = mapped_column(REAL)
    category_confidence_level: Mapped[str | None] = mapped_column(String(16))  # the provider's word
    mcc: Mapped[str | None] = mapped_column(String(4))
    merchant_key: Mapped[bytes | None] = mapped_column(LargeBinary)  # `KeyStore.digest` of `merchant_label`

    __table_args__ = (
        Index("ix_bank_transactions_user_date", "user_id", "posted_date"),
        Index("ix_bank_transactions_posted_date", "posted_date"),
        Index("ix_bank_transactions_uncategorised", "connection_id", postgresql_where="category IS NULL"),
        CheckConstraint(
            "category_source IN ('provider', 'model', 'member') AND (category IS NULL) = (category_source IS NULL)"
            " AND (category IS NULL) = (category_confidence IS NULL)",
            name="category_source",
        ),
    )


class CategoryCorrection(Base):
    """A member's word on a merchant's category: it wins over every other source, for every
    transaction of theirs from that merchant, earlier and later, and survives re-syncs."""

    __tablename__ = "category_corrections"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    merchant_key: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)  # as bank_transactions'
    merchant: Mapped[bytes] = mapped_column(LargeBinary)  # sealed: the `merchant_label`, for export and training
    category: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


@dataclass(frozen=True)
class ConnectionState:
    id: uuid.UUID
    user_id: uuid.UUID
    provider: str
    item_id: str
    access_token: str
    cursor: str | None
    status: str


@dataclass(frozen=True, slots=True)
class SyncBatch:
    """A complete batch pulled from the provider (every page), with the cursor after it."""

    added: list[Transaction]
    modified: list[Transaction]
    removed: list[str]
    accounts: list[Account]
    next_cursor: str


@dataclass(frozen=True)
class BatchApplied:
    added: int
    modified: int
    removed: int
    first_date: date | None  # the earliest posted date the batch touched
    last_date: date | None


@dataclass(frozen=True, slots=True)
class LinkedConnection:
    connection_id: uuid.UUID
    created: bool
    # The access token of the item this link replaced (same institution): revoke it at the provider.
    replaced_token: str | None


@dataclass(frozen=True, slots=True)
class StatusChanged:
    user_id: uuid.UUID
    previous: str


@dataclass(frozen=True, slots=True)
class ItemConnection:
    connection_id: uuid.UUID
    user_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class AccountRecord:
    account_id: str
    name: str  # opened
    mask: str | None  # opened
    type: str
    subtype: str | None
    currency: str
    balance_minor: int | None


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    id: uuid.UUID
    provider: str
    institution_id: str | None
    institution_name: str | None
    status: str
    last_synced_at: datetime | None
    created_at: datetime
    accounts: list[AccountRecord]


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    connection_id: uuid.UUID
    transaction_id: str
    account_id: str
    amount_minor: int
    currency: str
    posted_date: date
    authorized_date: date | None
    description: str  # opened
    merchant_name: str | None  # opened
    category_primary: str | None
    category_detailed: str | None
    pending: bool
    category: str | None
    category_source: str | None
    category_confidence: float | None
    category_confidence_level: str | None
    mcc: str | None


@dataclass(frozen=True)
class LinkStateRecord:
    """Whom a link state was handed to, for which provider, and whether it is still in time."""

    user_id: uuid.UUID
    provider: str
    expires_at: datetime
    expired: bool


# How long a member has to authorise at the bank and come back with the code.
LINK_STATE_TTL = timedelta(minutes=10)
# Link states a member may hold open at once (older ones are dropped as new ones are handed out).
LINK_STATES_PER_MEMBER = 5


def link_state_digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


async def remember_link_state(pool: AsyncConnectionPool, user_id: uuid.UUID, provider: str, state: str) -> datetime:
    """Bind `state` to the member for `LINK_STATE_TTL`; returns when it expires. Expired states
    of anyone, and this member's beyond the newest `LINK_STATES_PER_MEMBER`, are deleted."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "INSERT INTO bank_link_states (digest, user_id, provider, expires_at) VALUES (%s, %s, %s, now() + %s)"
            " RETURNING expires_at",
            (link_state_digest(state), user_id, provider, LINK_STATE_TTL),
        )
        row = await cursor.fetchone()
        assert row is not None
        await connection.execute(
            "DELETE FROM bank_link_states WHERE expires_at < now() OR digest IN (SELECT digest FROM bank_link_states"
            " WHERE user_id = %s ORDER BY created_at DESC, digest OFFSET %s)",
            (user_id, LINK_STATES_PER_MEMBER),
        )
    return row[0]


async def take_link_state(pool: AsyncConnectionPool, state: str) -> LinkStateRecord | None:
    """Use up a link state: whoever presents it, it is deleted, so it works at most once. None
    when it was never handed out or was used (or dropped) before."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "DELETE FROM bank_link_states WHERE digest = %s"
            " RETURNING user_id, provider, expires_at, expires_at <= now()",
            (link_state_digest(state),),
        )
        row = await cursor.fetchone()
    return LinkStateRecord(row[0], row[1], row[2], row[3]) if row else None


class LinkRefused(Exception):
    """Linking is not possible now: `reason` is `consent` (no active open_banking consent) or
    `disconnecting` (this item is being disconnected)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def link_connection(
    pool: AsyncConnectionPool, keys: KeyStore, user_id: uuid.UUID, provider: str, exchanged: Exchanged
) -> LinkedConnection:
    """Store a newly linked item. Linking an institution the member already linked replaces that
    connection's item (its data is dropped and synced afresh from the new one), so nothing is
    held twice. Returns the connection, whether it is new, and the replaced item's access token
    to remove at the provider.

    Consent is checked here, under the member's row lock (taken first, as consent changes take
    it): a revocation either commits first (and this refuses) or waits, then finds and
    disconnects this connection."""
    sealed = await keys.seal(str(user_id), exchanged.access_token.encode())
    async with pool.connection() as connection, connection.transaction():
        await connection.execute("SELECT 1 FROM members WHERE id = %s FOR NO KEY UPDATE", (user_id,))
        cursor = await connection.execute(
            "SELECT 1 FROM consents WHERE user_id = %s AND scope = 'open_banking' AND revoked_at IS NULL"
            " AND expires_at > now()",
            (user_id,),
        )
        if await cursor.fetchone() is None:
            raise LinkRefused("consent")
        cursor = await connection.execute(
            "SELECT id, status FROM bank_connections WHERE provider = %s AND item_id = %s AND user_id = %s FOR UPDATE",
            (provider, exchanged.item_id, user_id),
        )
        same_item = await cursor.fetchone()
        if same_item is not None:
            if same_item[1] == "disconnected":
                raise LinkRefused("disconnecting")
            # A re-authentication (TrueLayer renews the credential under the same id) or a
            # repeated exchange: keep the newest credentials; the data stays.
            await connection.execute(
                "UPDATE bank_connections SET access_token = %s, status = 'syncing', last_error = NULL,"
                " updated_at = now() WHERE id = %s",
                (sealed, same_item[0]),
            )
            return LinkedConnection(same_item[0], False, None)
        existing = None
        if exchanged.institution_id is not None:
            cursor = await connection.execute(
                "SELECT id, access_token FROM bank_connections WHERE user_id = %s AND provider = %s"
                " AND institution_id = %s AND status <> 'disconnected' FOR UPDATE",
                (user_id, provider, exchanged.institution_id),
            )
            existing = await cursor.fetchone()
        if existing is not None:
            connection_id, old_token = existing[0], bytes(existing[1])
            await connection.execute("DELETE FROM bank_transactions WHERE connection_id = %s", (connection_id,))
            await connection.execute("DELETE FROM bank_accounts WHERE connection_id = %s", (connection_id,))
            await connection.execute(
                "UPDATE bank_connections SET item_id = %s, access_token = %s, cursor = NULL, status = 'syncing',"
                " last_error = NULL, updated_at = now() WHERE id = %s",
                (exchanged.item_id, sealed, connection_id),
            )
            return LinkedConnection(connection_id, False, (await keys.unseal(old_token)).decode())
        connection_id = uuid.uuid4()
        await connection.execute(
            "INSERT INTO bank_connections (id, user_id, provider, item_id, institution_id, institution_name,"
            " access_token) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                connection_id,
                user_id,
                provider,
                exchanged.item_id,
                exchanged.institution_id,
                exchanged.institution_name,
                sealed,
            ),
        )
        return LinkedConnection(connection_id, True, None)


async def store_credentials(
    pool: AsyncConnectionPool, keys: KeyStore, state: ConnectionState, access_token: str
) -> None:
    """Keep credentials a provider refreshed, at once (the old ones may no longer work), unless
    the connection's item has changed meanwhile."""
    sealed = await keys.seal(str(state.user_id), access_token.encode())
    async with pool.connection() as connection:
        await connection.execute(
            "UPDATE bank_connections SET access_token = %s, updated_at = now() WHERE id = %s AND item_id = %s",
            (sealed, state.id, state.item_id),
        )


async def connection_state(
    pool: AsyncConnectionPool, keys: KeyStore, connection_id: uuid.UUID
) -> ConnectionState | None:
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT user_id, provider, item_id, access_token, cursor, status FROM bank_connections WHERE id = %s",
            (connection_id,),
        )
        row = await cursor.fetchone()
    if row is None:
        return None
    user_id, provider, item_id, sealed, sync_cursor, status = row
    token = (await keys.unseal(bytes(sealed))).decode()
    return ConnectionState(connection_id, user_id, provider, item_id, token, sync_cursor, status)


# The category a member set stays whatever the provider sends later (a `modified` transaction
# included); anything else takes the batch's.
KEEP_MEMBER_CATEGORY = " ".join(
    f"{column} = CASE WHEN bank_transactions.category_source = 'member' AND excluded.category_source <> 'member'"
    f" THEN bank_transactions.{column} ELSE excluded.{column} END,"
    for column in ("category", "category_confidence", "category_source")
)


async def lock_member_share(connection: Any, user_id: uuid.UUID) -> None:
    """Hold the member's row against a category correction (which locks it FOR NO KEY UPDATE)
    until the caller's transaction ends: a correction then sees every row this transaction
    writes, or this transaction sees the correction. Taken before the connection's row, as
    linking and consent changes take the member's row first."""
    await connection.execute("SELECT 1 FROM members WHERE id = %s FOR SHARE", (user_id,))


async def member_corrections(connection: Any, user_id: uuid.UUID) -> dict[bytes, SpendingCategory]:
    cursor = await connection.execute(
        "SELECT merchant_key, category FROM category_corrections WHERE user_id = %s", (user_id,)
    )
    return {bytes(key): SpendingCategory(category) for key, category in await cursor.fetchall()}


async def apply_sync_batch(
    pool: AsyncConnectionPool,
    keys: KeyStore,
    state: ConnectionState,
    batch: SyncBatch,
    categories: Sequence[Categorised],
) -> BatchApplied | None:
    """Apply one complete batch and its cursor in one transaction, unless the connection moved
    on since the batch began: another run applied it (the cursor moved), the item was replaced by
    a re-link, or it is being disconnected. Then None, and nothing changes.

    `categories` are the batch's transactions' (added, then modified) as the categoriser decided;
    the member's correction for a transaction's merchant wins over them, and a category the member
    set is kept whatever the batch says. Nothing is unsealed: merchants are matched by digest."""
    owner = str(state.user_id)
    added, modified, removed, accounts = batch.added, batch.modified, batch.removed, batch.accounts
    items = [*added, *modified]
    if len(categories) != len(items):
        raise ValueError(f"{len(categories)} categories for {len(items)} transactions")
    key = await keys.live_key(owner) if items else None
    merchant_keys = [key.digest(merchant_label(t.description, t.merchant_name)) for t in items] if key else []
    rows = []
    for item, merchant_key in zip(items, merchant_keys, strict=True):
        rows.append(
            [
                state.id,
                item.transaction_id,
                state.user_id,
                item.account_id,
                item.amount_minor,
                item.currency,
                item.posted_date,
                item.authorized_date,
                await keys.seal(owner, item.description.encode()),
                await keys.seal(owner, item.merchant_name.encode()) if item.merchant_name else None,
                item.category_primary,
                item.category_detailed,
                item.pending,
                item.pending_transaction_id,
                item.category_confidence_level,
                item.mcc,
                merchant_key,
            ]
        )
    account_rows = [
        (
            state.id,
            account.account_id,
            state.user_id,
            await keys.seal(owner, account.name.encode()),
            await keys.seal(owner, account.mask.encode()) if account.mask else None,
            account.type,
            account.subtype,
            account.currency,
            account.balance_minor,
        )
        for account in accounts
    ]
    async with pool.connection() as connection, connection.transaction():
        await lock_member_share(connection, state.user_id)
        cursor = await connection.execute(
            "SELECT cursor, status, item_id FROM bank_connections WHERE id = %s FOR UPDATE", (state.id,)
        )
        row = await cursor.fetchone()
        if row is None or row[0] != state.cursor or row[1] == "disconnected" or row[2] != state.item_id:
            return None
        corrections = await member_corrections(connection, state.user_id) if items else {}
        for values, merchant_key, decided in zip(rows, merchant_keys, categories, strict=True):
            corrected = corrections.get(merchant_key)
            chosen = by_member(corrected) if corrected is not None else decided
            values += [chosen.category.value, chosen.source, chosen.confidence]
        dates: list[date] = [item.posted_date for item in items]
        if removed:
            cursor = await connection.execute(
                "DELETE FROM bank_transactions WHERE connection_id = %s AND transaction_id = ANY(%s)"
                " RETURNING posted_date",
                (state.id, removed),
            )
            dates.extend(row[0] for row in await cursor.fetchall())
        async with connection.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO bank_transactions (connection_id, transaction_id, user_id, account_id, amount_minor,"
                " currency, posted_date, authorized_date, description, merchant_name, category_primary,"
                " category_detailed, pending, pending_transaction_id, category_confidence_level, mcc, merchant_key,"
                " category, category_source, category_confidence) VALUES"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (connection_id, transaction_id) DO UPDATE SET account_id = excluded.account_id,"
                " amount_minor = excluded.amount_minor, currency = excluded.currency,"
                " posted_date = excluded.posted_date, authorized_date = excluded.authorized_date,"
                " description = excluded.description, merchant_name = excluded.merchant_name,"
                " category_primary = excluded.category_primary, category_detailed = excluded.category_detailed,"
                " pending = excluded.pending, pending_transaction_id = excluded.pending_transaction_id,"
                " category_confidence_level = excluded.category_confidence_level, mcc = excluded.mcc,"
                f" merchant_key = excluded.merchant_key, {KEEP_MEMBER_CATEGORY} updated_at = now()",
                rows,
            )
            await cursor.executemany(
                "INSERT INTO bank_accounts (connection_id, account_id, user_id, name, mask, type, subtype, currency,"
                " balance_minor) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (connection_id, account_id) DO UPDATE SET name = excluded.name, mask = excluded.mask,"
                " type = excluded.type, subtype = excluded.subtype, currency = excluded.currency,"
                " balance_minor = excluded.balance_minor",
                account_rows,
            )
        await connection.execute(
            "UPDATE bank_connections SET cursor = %s, status = 'active', last_synced_at = now(), last_error = NULL,"
            " updated_at = now() WHERE id = %s",
            (batch.next_cursor, state.id),
        )
    return BatchApplied(
        added=len(added),
        modified=len(modified),
        removed=len(removed),
        first_date=min(dates) if dates else None,
        last_date=max(dates) if dates else None,
    )


@dataclass(frozen=True, slots=True)
class Uncategorised:
    """A transaction stored before categories existed, opened to be categorised."""

    transaction_id: str
    description: str
    merchant_name: str | None
    amount_minor: int
    category_primary: str | None
    category_detailed: str | None
    category_confidence_level: str | None
    mcc: str | None


async def uncategorised_transactions(
    pool: AsyncConnectionPool, keys: KeyStore, connection_id: uuid.UUID, limit: int
) -> list[Uncategorised]:
    """Up to `limit` of the connection's transactions without a category (stored before
    categories existed), descriptions and merchant names opened: a one-off per row, on the sync's
    batch path. Usually none, found by a partial index."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT transaction_id, description, merchant_name, amount_minor, category_primary, category_detailed,"
            " category_confidence_level, mcc FROM bank_transactions WHERE connection_id = %s AND category IS NULL"
            " ORDER BY transaction_id LIMIT %s",
            (connection_id, limit),
        )
        rows = await cursor.fetchall()
    return [
        Uncategorised(
            transaction_id=transaction_id,
            description=(await keys.unseal(bytes(description))).decode(),
            merchant_name=(await keys.unseal(bytes(merchant))).decode() if merchant is not None else None,
            amount_minor=amount,
            category_primary=primary,
            category_detailed=detailed,
            category_confidence_level=level,
            mcc=mcc,
        )
        for transaction_id, description, merchant, amount, primary, detailed, level, mcc in rows
    ]


async def store_categories(
    pool: AsyncConnectionPool,
    keys: KeyStore,
    state: ConnectionState,
    found: Sequence[Uncategorised],
    categories: Sequence[Categorised],
) -> int:
    """Give stored transactions without a category theirs (the member's correction for the
    merchant first), and their merchant key. Rows categorised meanwhile are left alone."""
    key = await keys.live_key(str(state.user_id))
    async with pool.connection() as connection, connection.transaction():
        await lock_member_share(connection, state.user_id)
        corrections = await member_corrections(connection, state.user_id)
        rows = []
        for item, decided in zip(found, categories, strict=True):
            merchant_key = key.digest(merchant_label(item.description, item.merchant_name))
            corrected = corrections.get(merchant_key)
            chosen = by_member(corrected) if corrected is not None else decided
            rows.append(
                (chosen.category.value, chosen.source, chosen.confidence, merchant_key, state.id, item.transaction_id)
            )
        async with connection.cursor() as cursor:
            await cursor.executemany(
                "UPDATE bank_transactions SET category = %s, category_source = %s, category_confidence = %s,"
                " merchant_key = %s WHERE connection_id = %s AND transaction_id = %s AND category IS NULL",
                rows,
            )
    return len(rows)


async def set_status(
    connection: Any, connection_id: uuid.UUID, status: str, error: str | None = None
) -> StatusChanged | None:
    """Set a connection's status inside the caller's transaction; returns its member and previous
    status, or None when the connection is gone or (for any status but `disconnected`) being
    disconnected, which nothing undoes."""
    cursor = await connection.execute(
        "UPDATE bank_connections c SET status = %s, last_error = %s, updated_at = now()"
        " FROM (SELECT id, status FROM bank_connections WHERE id = %s FOR UPDATE) old"
        " WHERE c.id = old.id AND (old.status <> 'disconnected' OR %s = 'disconnected')"
        " RETURNING c.user_id, old.status",
        (status, error, connection_id, status),
    )
    row = await cursor.fetchone()
    return StatusChanged(row[0], row[1]) if row else None


async def connection_by_item(pool: AsyncConnectionPool, provider: str, item_id: str) -> ItemConnection | None:
    """The connection (and its member) of a provider's item."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT id, user_id FROM bank_connections WHERE provider = %s AND item_id = %s", (provider, item_id)
        )
        row = await cursor.fetchone()
    return ItemConnection(row[0], row[1]) if row else None


async def member_connection_ids(pool: AsyncConnectionPool, user_id: uuid.UUID) -> list[uuid.UUID]:
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT id FROM bank_connections WHERE user_id = %s ORDER BY id", (user_id,))
        return [row[0] for row in await cursor.fetchall()]


async def delete_connection(pool: AsyncConnectionPool, connection_id: uuid.UUID) -> None:
    async with pool.connection() as connection:
        await connection.execute("DELETE FROM bank_connections WHERE id = %s", (connection_id,))


async def member_connections(pool: AsyncConnectionPool, keys: KeyStore, user_id: uuid.UUID) -> list[ConnectionRecord]:
    """The member's connections with their accounts (names and masks opened)."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT id, provider, institution_id, institution_name, status, last_synced_at, created_at"
            " FROM bank_connections WHERE user_id = %s ORDER BY created_at",
            (user_id,),
        )
        connection_rows = await cursor.fetchall()
        cursor = await connection.execute(
            "SELECT connection_id, account_id, name, mask, type, subtype, currency, balance_minor"
            " FROM bank_accounts WHERE user_id = %s ORDER BY account_id",
            (user_id,),
        )
        account_rows = await cursor.fetchall()
    by_connection: dict[uuid.UUID, list[AccountRecord]] = {}
    for connection_id, account_id, name, mask, type_, subtype, currency, balance in account_rows:
        by_connection.setdefault(connection_id, []).append(
            AccountRecord(
                account_id=account_id,
                name=(await keys.unseal(bytes(name))).decode(),
                mask=(await keys.unseal(bytes(mask))).decode() if mask is not None else None,
                type=type_,
                subtype=subtype,
                currency=currency,
                balance_minor=balance,
            )
        )
    return [
        ConnectionRecord(
            id=connection_id,
            provider=provider,
            institution_id=institution_id,
            institution_name=institution_name,
            status=status,
            last_synced_at=last_synced_at,
            created_at=created_at,
            accounts=by_connection.get(connection_id, []),
        )
        for connection_id, provider, institution_id, institution_name, status, last_synced_at, created_at in (
            connection_rows
        )
    ]


async def member_transactions(
    pool: AsyncConnectionPool,
    keys: KeyStore,
    user_id: uuid.UUID,
    *,
    since: date | None,
    until: date | None,
    limit: int,
    after: tuple[date, uuid.UUID, str] | None = None,
    category: SpendingCategory | None = None,
) -> list[TransactionRecord]:
    """The member's transactions, newest first (keyset paging by `after` = the last row's
    (posted date, connection id, transaction id): ids are unique only within a connection),
    of one category if asked."""
    clauses = ["user_id = %(user)s"]
    params: dict[str, Any] = {"user": user_id, "limit": limit}
    if since is not None:
        clauses.append("posted_date >= %(since)s")
        params["since"] = since
    if until is not None:
        clauses.append("posted_date < %(until)s")
        params["until"] = until
    if category is not None:
        clauses.append("category = %(category)s")
        params["category"] = category.value
    if after is not None:
        clauses.append("(posted_date, connection_id, transaction_id) < (%(after_date)s, %(after_conn)s, %(after_id)s)")
        params["after_date"], params["after_conn"], params["after_id"] = after
    async with pool.connection() as connection:
        cursor = await connection.execute(
            f"SELECT {TRANSACTION_COLUMNS} FROM bank_transactions WHERE {' AND '.join(clauses)}"
            " ORDER BY posted_date DESC, connection_id DESC, transaction_id DESC LIMIT %(limit)s",
            params,
        )
        rows = await cursor.fetchall()
    return [await transaction_record(keys, row) for row in rows]


async def member_transaction(
    pool: AsyncConnectionPool, keys: KeyStore, user_id: uuid.UUID, connection_id: uuid.UUID, transaction_id: str
) -> TransactionRecord | None:
    async with pool.connection() as connection:
        cursor = await connection.execute(
            f"SELECT {TRANSACTION_COLUMNS} FROM bank_transactions"
            " WHERE user_id = %s AND connection_id = %s AND transaction_id = %s",
            (user_id, connection_id, transaction_id),
        )
        row = await cursor.fetchone()
    return await transaction_record(keys, row) if row is not None else None


TRANSACTION_COLUMNS = (
    "connection_id, transaction_id, account_id, amount_minor, currency, posted_date, authorized_date, description,"
    " merchant_name, category_primary, category_detailed, pending, category, category_source, category_confidence,"
    " category_confidence_level, mcc"
)


async def transaction_record(keys: KeyStore, row: Any) -> TransactionRecord:
    """A row of `TRANSACTION_COLUMNS`, description and merchant name opened."""
    (connection_id, transaction_id, account_id, amount, currency, posted, authorized, description, merchant,
     primary, detailed, pending, category, source, confidence, level, mcc) = row  # fmt: skip
    return TransactionRecord(
        connection_id=connection_id,
        transaction_id=transaction_id,
        account_id=account_id,
        amount_minor=amount,
        currency=currency,
        posted_date=posted,
        authorized_date=authorized,
        description=(await keys.unseal(bytes(description))).decode(),
        merchant_name=(await keys.unseal(bytes(merchant))).decode() if merchant is not None else None,
        category_primary=primary,
        category_detailed=detailed,
        pending=pending,
        category=category,
        category_source=source,
        category_confidence=round(confidence, 4) if confidence is not None else None,
        category_confidence_level=level,
        mcc=mcc,
    )


@dataclass(frozen=True, slots=True)
class Corrected:
    transactions: int  # the member's transactions now in the category (the one corrected included)


async def correct_category(
    pool: AsyncConnectionPool,
    keys: KeyStore,
    user_id: uuid.UUID,
    connection_id: uuid.UUID,
    transaction_id: str,
    category: SpendingCategory,
) -> Corrected | None:
    """The member says the transaction's merchant is `category`: recorded per merchant (the
    latest word wins) and applied at once to the transaction and every other one of theirs from
    the same merchant, earlier ones included; later ones take it as they sync. None when the
    member has no such transaction.

    Opens one value (the merchant name, else the description) to seal the merchant's label into
    the correction, for the member's export and the next training run."""
    async with pool.connection() as connection, connection.transaction():
        # Serialises with syncs of the member's connections (FOR SHARE): each sees the other whole.
        await connection.execute("SELECT 1 FROM members WHERE id = %s FOR NO KEY UPDATE", (user_id,))
        cursor = await connection.execute(
            "SELECT merchant_key, description, merchant_name FROM bank_transactions"
            " WHERE user_id = %s AND connection_id = %s AND transaction_id = %s",
            (user_id, connection_id, transaction_id),
        )
        row = await cursor.fetchone()
        if row is None:
            return None
        stored_key, description, merchant = row
        label = merchant_label(
            (await keys.unseal(bytes(description))).decode() if merchant is None else "",
            (await keys.unseal(bytes(merchant))).decode() if merchant is not None else None,
        )
        merchant_key = bytes(stored_key) if stored_key is not None else await keys.digest(str(user_id), label)
        await connection.execute(
            "INSERT INTO category_corrections (user_id, merchant_key, merchant, category) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (user_id, merchant_key) DO UPDATE SET category = excluded.category,"
            " merchant = excluded.merchant, created_at = now()",
            (user_id, merchant_key, await keys.seal(str(user_id), label.encode()), category.value),
        )
        cursor = await connection.execute(
            "UPDATE bank_transactions SET category = %s, category_source = 'member', category_confidence = %s,"
            " merchant_key = coalesce(merchant_key, %s), updated_at = now()"
            " WHERE user_id = %s AND (merchant_key = %s OR (connection_id = %s AND transaction_id = %s))",
            (
                category.value,
                MEMBER_CONFIDENCE,
                merchant_key,
                user_id,
                merchant_key,
                connection_id,
                transaction_id,
            ),
        )
        return Corrected(transactions=cursor.rowcount)


@dataclass(frozen=True, slots=True)
class CorrectionRecord:
    """A member's correction opened for the categoriser's training run: the merchant's label, the
    category they chose, and the amounts of their latest transactions from it (no descriptions)."""

    user_id: uuid.UUID
    label: str  # opened, in the training process's memory only
    category: SpendingCategory
    amounts_minor: list[int]


async def corrections_for_training(
    pool: AsyncConnectionPool, keys: KeyStore, *, amounts_per_merchant: int = 20
) -> list[CorrectionRecord]:
    """Every member's corrections, labels opened with each member's key. Only corrections whose
    member still holds their key are read (an erased member's rows are gone with them)."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT c.user_id, c.merchant, c.category, ARRAY(SELECT t.amount_minor FROM bank_transactions t"
            " WHERE t.user_id = c.user_id AND t.merchant_key = c.merchant_key ORDER BY t.posted_date DESC LIMIT %s)"
            " FROM category_corrections c ORDER BY c.user_id, c.merchant_key",
            (amounts_per_merchant,),
        )
        rows = await cursor.fetchall()
    return [
        CorrectionRecord(
            user_id=user_id,
            label=(await keys.unseal(bytes(sealed))).decode(),
            category=SpendingCategory(category),
            amounts_minor=list(amounts),
        )
        for user_id, sealed, category, amounts in rows
    ]
