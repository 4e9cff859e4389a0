"""Award webhooks as stored: each badge's signing secret (sealed with the service key) and the
delivery rows `WebhookDeliveryWorkflow` keeps up to date, attempt by attempt."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, Text, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.db.keys import KeyStore
from badges.domain.identity import SERVICE_OWNER


class BadgeWebhookSecret(Base):
    """The signing secret for a badge's outbound award webhooks, sealed with the service key."""

    __tablename__ = "badge_webhook_secrets"

    badge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookDelivery(Base):
    """One award POSTed to a badge's webhook URL by `WebhookDeliveryWorkflow`."""

    __tablename__ = "webhook_deliveries"

    delivery_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    badge_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


SECRET_BYTES = 32


def new_secret() -> str:
    """A signing secret: URL-safe text, used as its UTF-8 bytes for HMAC (or as a bearer token)."""
    return secrets.token_urlsafe(SECRET_BYTES)


async def seal_secret(keys: KeyStore, secret: str) -> tuple[bytes, str]:
    """The secret sealed with the service key, and that key's id."""
    key = await keys.live_key(SERVICE_OWNER, create=True)
    return key.encrypt(secret.encode()), key.key_id


async def unseal_secret(keys: KeyStore, sealed: bytes, key_id: str) -> str:
    return (await keys.key_by_id(key_id)).decrypt(sealed).decode()


# --- badge webhook secrets -------------------------------------------------------------------


async def ensure_badge_webhook_secret(engine: AsyncEngine, keys: KeyStore, badge_id: str) -> str | None:
    """Give the badge a webhook secret unless it has one. Returns the new secret (show it to the
    admin once: it is never answered again), or None when the badge already had one."""
    secret = new_secret()
    sealed, key_id = await seal_secret(keys, secret)
    async with engine.begin() as connection:
        created = await connection.scalar(
            insert(BadgeWebhookSecret)
            .values(badge_id=badge_id, sealed_secret=sealed, key_id=key_id)
            .on_conflict_do_nothing(index_elements=[BadgeWebhookSecret.badge_id])
            .returning(BadgeWebhookSecret.badge_id)
        )
    return secret if created is not None else None


async def rotate_badge_webhook_secret(engine: AsyncEngine, keys: KeyStore, badge_id: str) -> str:
    """Replace (or create) the badge's webhook secret; returns the new one. Deliveries signed
    after this use it (worker caches hold the old one for at most `SECRET_CACHE_SECONDS`)."""
    secret = new_secret()
    sealed, key_id = await seal_secret(keys, secret)
    statement = insert(BadgeWebhookSecret).values(badge_id=badge_id, sealed_secret=sealed, key_id=key_id)
    async with engine.begin() as connection:
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=[BadgeWebhookSecret.badge_id],
                set_={"sealed_secret": sealed, "key_id": key_id, "created_at": func.now()},
            )
        )
    return secret


async def badge_webhook_secret(engine: AsyncEngine, keys: KeyStore, badge_id: str) -> str | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(BadgeWebhookSecret.sealed_secret, BadgeWebhookSecret.key_id).where(
                    BadgeWebhookSecret.badge_id == badge_id
                )
            )
        ).one_or_none()
    return None if row is None else await unseal_secret(keys, row.sealed_secret, row.key_id)


# --- deliveries ------------------------------------------------------------------------------


async def record_delivery_attempt(
    engine: AsyncEngine,
    *,
    delivery_id: str,
    user_id: uuid.UUID,
    badge_id: str,
    url: str,
    status: str,
    attempt: int,
    status_code: int | None,
    error: str | None,
) -> None:
    """Upsert the delivery row after an attempt. Attempts only grow, and a delivered row stays
    delivered (an attempt retried after a lost answer must not undo it)."""
    statement = insert(WebhookDelivery).values(
        delivery_id=delivery_id,
        user_id=user_id,
        badge_id=badge_id,
        url=url,
        status=status,
        attempts=attempt,
        last_status_code=status_code,
        last_error=error,
    )
    current = WebhookDelivery.__table__.c
    async with engine.begin() as connection:
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=[WebhookDelivery.delivery_id],
                set_={
                    "status": statement.excluded.status,
                    "attempts": func.greatest(current.attempts, statement.excluded.attempts),
                    "last_status_code": statement.excluded.last_status_code,
                    "last_error": statement.excluded.last_error,
                    "url": statement.excluded.url,
                    "updated_at": func.now(),
                },
                where=current.status != "delivered",
            )
        )


async def record_delivery_failure(
    engine: AsyncEngine, *, delivery_id: str, user_id: uuid.UUID, badge_id: str, url: str, error: str
) -> None:
    """Mark a delivery given up on, with the reason (creating the row if no attempt wrote one)."""
    statement = insert(WebhookDelivery).values(
        delivery_id=delivery_id, user_id=user_id, badge_id=badge_id, url=url, status="failed", last_error=error
    )
    current = WebhookDelivery.__table__.c
    async with engine.begin() as connection:
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=[WebhookDelivery.delivery_id],
                set_={"status": "failed", "last_error": error, "updated_at": func.now()},
                where=current.status != "delivered",
            )
        )


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    delivery_id: str
    user_id: uuid.UUID
    badge_id: str
    url: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


async def list_deliveries(
    engine: AsyncEngine, *, status: str | None, badge_id: str | None, limit: int
) -> list[DeliveryRecord]:
    """Deliveries, newest first."""
    query = select(WebhookDelivery.__table__).order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.delivery_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if badge_id is not None:
        query = query.where(WebhookDelivery.badge_id == badge_id)
    async with engine.connect() as connection:
        return [DeliveryRecord(**row._mapping) for row in await connection.execute(query.limit(limit))]
