"""Event systems that sign their requests, and the signatures already seen (replay protection).

Registrations are SQLAlchemy Core; signature receipts, claimed for every signed event, are
hand-written on the psycopg pool (the real-time path)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import DateTime, LargeBinary, String, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base


class Integration(Base):
    """An attendance scanner, voting platform or calculator allowed to send events."""

    __tablename__ = "integrations"

    integration_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    # HMAC needs the secret itself, so it is sealed (service key), not hashed.
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SignatureReceipt(Base):
    """A signature already accepted: the same signed request again is a replay. Rows older than
    the tolerance window are useless (the timestamp check refuses those) and are pruned."""

    __tablename__ = "signature_receipts"

    integration_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    signature: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# --- integrations ----------------------------------------------------------------------------


async def insert_integration(
    engine: AsyncEngine, integration_id: str, event_types: list[str], sealed_secret: bytes, key_id: str, author: str
) -> datetime | None:
    """Register an integration; None when the id is taken (even by a disabled one)."""
    async with engine.begin() as connection:
        created_at: datetime | None = await connection.scalar(
            insert(Integration)
            .values(
                integration_id=integration_id,
                event_types=event_types,
                sealed_secret=sealed_secret,
                key_id=key_id,
                created_by=author,
            )
            .on_conflict_do_nothing(index_elements=[Integration.integration_id])
            .returning(Integration.created_at)
        )
    return created_at


@dataclass(frozen=True, slots=True)
class IntegrationRecord:
    integration_id: str
    event_types: list[str]
    created_by: str
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True, slots=True)
class IntegrationSecretRecord:
    """An active integration's event types and its secret, sealed with the service key `key_id`."""

    event_types: list[str]
    sealed_secret: bytes
    key_id: str


@dataclass(frozen=True, slots=True)
class RotatedIntegration:
    event_types: list[str]
    created_at: datetime


async def list_integrations(engine: AsyncEngine) -> list[IntegrationRecord]:
    async with engine.connect() as connection:
        query = select(
            Integration.integration_id,
            Integration.event_types,
            Integration.created_by,
            Integration.created_at,
            Integration.disabled_at,
        ).order_by(Integration.integration_id)
        return [IntegrationRecord(*row) for row in await connection.execute(query)]


async def active_integration(engine: AsyncEngine, integration_id: str) -> IntegrationSecretRecord | None:
    """The integration's event types and sealed secret, unless it is unknown or disabled."""
    async with engine.connect() as connection:
        query = select(Integration.event_types, Integration.sealed_secret, Integration.key_id).where(
            Integration.integration_id == integration_id, Integration.disabled_at.is_(None)
        )
        row = (await connection.execute(query)).one_or_none()
    return None if row is None else IntegrationSecretRecord(*row)


async def replace_integration_secret(
    engine: AsyncEngine, integration_id: str, sealed_secret: bytes, key_id: str
) -> RotatedIntegration | None:
    """Give an active integration a new secret (the old one stops working at once); returns its
    event types and creation time, or None if there is no such active integration."""
    async with engine.begin() as connection:
        result = await connection.execute(
            update(Integration)
            .where(Integration.integration_id == integration_id, Integration.disabled_at.is_(None))
            .values(sealed_secret=sealed_secret, key_id=key_id)
            .returning(Integration.event_types, Integration.created_at)
        )
        row = result.one_or_none()
    return None if row is None else RotatedIntegration(*row)


async def disable_integration(engine: AsyncEngine, integration_id: str) -> bool:
    """Stop accepting an integration's requests; False if it is unknown or already disabled."""
    async with engine.begin() as connection:
        disabled = await connection.scalar(
            update(Integration)
            .where(Integration.integration_id == integration_id, Integration.disabled_at.is_(None))
            .values(disabled_at=func.now())
            .returning(Integration.integration_id)
        )
    return disabled is not None


# --- signature receipts (replay protection, on the hot path: the psycopg pool) ----------------

CLAIM_SIGNATURE = """
INSERT INTO signature_receipts (integration_id, signature) VALUES (%(integration_id)s, %(signature)s)
ON CONFLICT (integration_id, signature) DO NOTHING
RETURNING 1
"""
RELEASE_SIGNATURE = (
    "DELETE FROM signature_receipts WHERE integration_id = %(integration_id)s AND signature = %(signature)s"
)
PRUNE_SIGNATURES = "DELETE FROM signature_receipts WHERE received_at < now() - %(retention)s"


async def claim_signature(pool: AsyncConnectionPool, integration_id: str, signature: str) -> bool:
    """Record a signature as used; False when it already was (the request is a replay)."""
    async with pool.connection() as connection:
        cursor = await connection.execute(CLAIM_SIGNATURE, {"integration_id": integration_id, "signature": signature})
        return await cursor.fetchone() is not None


async def release_signature(pool: AsyncConnectionPool, integration_id: str, signature: str) -> None:
    """Forget a signature whose request was not acted on, so the sender may send it again."""
    async with pool.connection() as connection:
        await connection.execute(RELEASE_SIGNATURE, {"integration_id": integration_id, "signature": signature})


async def prune_signatures(pool: AsyncConnectionPool, retention: timedelta) -> None:
    """Drop receipts older than any signature still inside the timestamp tolerance."""
    async with pool.connection() as connection:
        await connection.execute(PRUNE_SIGNATURES, {"retention": retention})
