"""Open Badges credentials as stored: the issuer's signing keys (the private half sealed with the
service data key, so the master-key rotation re-wraps what protects it) and one row per credential
issued (its random ids, its place in the status list and whether it is revoked).

A credential row names its member without a foreign key: at erasure the link is cut and the row
kept, revoked, so its bit in the status list stays set for good. A credential whose award no
longer exists counts as revoked too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from psycopg import AsyncConnection
from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    LargeBinary,
    Sequence,
    String,
    Uuid,
    and_,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.db.keys import KeyStore
from badges.db.progress import AwardRow
from badges.domain.credentials import STATUS_LIST_SIZE
from badges.domain.identity import SERVICE_OWNER


class IssuerKey(Base):
    """One of the issuer's ES256 keys. The newest unretired one signs; every one stays published."""

    __tablename__ = "issuer_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)  # the public key's JWK thumbprint
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # PKCS#8 DER sealed with the service data key `data_key_id`; NULL once the key is retired.
    sealed_private_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    data_key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index(
            "uq_issuer_keys_active",
            text("(retired_at IS NULL)"),
            unique=True,
            postgresql_where=text("retired_at IS NULL"),
        ),
    )


STATUS_INDEX = Sequence("credential_status_index", start=0, minvalue=0)


class CredentialRow(Base):
    """A credential issued for an award. Asking again re-signs the same one (same ids, same bit)
    until it is revoked; after that a new one is made."""

    __tablename__ = "credentials"

    credential_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)  # NULL once the member is erased
    badge_id: Mapped[str] = mapped_column(String(64))
    instance: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # credentialSubject.id, random
    status_index: Mapped[int] = mapped_column(BigInteger, STATUS_INDEX, unique=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revocation_reason: Mapped[str | None] = mapped_column(String(32))  # member-request | member-erased

    __table_args__ = (
        Index(
            "uq_credentials_live_award",
            "user_id",
            "badge_id",
            "instance",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )


# --- issuer keys ------------------------------------------------------------------------------

# Serialises key creation across API processes: any constant.
ISSUER_KEY_LOCK = 0x6973737565726B  # "issuerk" in ASCII


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(public_key, as_dict=True)
    return {name: jwk[name] for name in ("kty", "crv", "x", "y")}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): a key id that is the key's own."""
    members = json.dumps({name: jwk[name] for name in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).decode().rstrip("=")


async def signing_key(engine: AsyncEngine, keys: KeyStore, now: datetime, rotation: timedelta) -> SigningKey:
    """The key that signs now: the active one, or a new one when there is none or the active one
    has signed for `rotation`. A new key retires the old: its private half is destroyed (NULL),
    its public half stays published."""
    async with engine.connect() as connection:
        row = (await connection.execute(select(IssuerKey).where(IssuerKey.retired_at.is_(None)))).one_or_none()
    if row is None or row.created_at + rotation <= now:
        row = await _rotate(engine, keys, now, rotation)
    assert row.sealed_private_key is not None
    der = (await keys.key_by_id(row.data_key_id)).decrypt(row.sealed_private_key)
    private_key = serialization.load_der_private_key(der, password=None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    return SigningKey(row.kid, private_key)


async def rotate_issuer_key(engine: AsyncEngine, keys: KeyStore, now: datetime) -> str:
    """Make a new signing key now, whatever the active one's age; returns its kid."""
    kid: str = (await _rotate(engine, keys, now, timedelta(0))).kid
    return kid


async def _rotate(engine: AsyncEngine, keys: KeyStore, now: datetime, rotation: timedelta) -> Any:
    private_key = ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk(private_key.public_key())
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    sealing = await keys.live_key(SERVICE_OWNER, create=True)
    async with engine.begin() as connection:
        await connection.execute(text(f"SELECT pg_advisory_xact_lock({ISSUER_KEY_LOCK})"))
        active = (await connection.execute(select(IssuerKey).where(IssuerKey.retired_at.is_(None)))).one_or_none()
        if active is not None and active.created_at + rotation > now:
            return active  # another process rotated first
        if active is not None:
            await connection.execute(
                update(IssuerKey).where(IssuerKey.kid == active.kid).values(retired_at=now, sealed_private_key=None)
            )
        await connection.execute(
            insert(IssuerKey).values(
                kid=thumbprint(jwk),
                public_jwk=jwk,
                sealed_private_key=sealing.encrypt(der),
                data_key_id=sealing.key_id,
                created_at=now,
            )
        )
        return (await connection.execute(select(IssuerKey).where(IssuerKey.retired_at.is_(None)))).one()


async def issuer_public_keys(engine: AsyncEngine) -> list[tuple[str, dict[str, Any]]]:
    """Every key the issuer has signed with, oldest first: (kid, public JWK)."""
    async with engine.connect() as connection:
        rows = await connection.execute(select(IssuerKey.kid, IssuerKey.public_jwk).order_by(IssuerKey.created_at))
        return [(row.kid, dict(row.public_jwk)) for row in rows]


# --- credentials --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialRecord:
    credential_id: uuid.UUID
    badge_id: str
    instance: str
    version: int  # of the definition the award was earned under
    awarded_at: datetime
    subject_id: uuid.UUID
    status_index: int
    issued_at: datetime


async def award_credential(
    engine: AsyncEngine, user_id: uuid.UUID, badge_id: str, instance: str
) -> CredentialRecord | None:
    """The member's live credential for an award, made if there is none yet; None when the
    member holds no such award."""
    async with engine.begin() as connection:
        award = (
            await connection.execute(
                select(AwardRow.version, AwardRow.awarded_at).where(
                    AwardRow.user_id == user_id, AwardRow.badge_id == badge_id, AwardRow.instance == instance
                )
            )
        ).one_or_none()
        if award is None:
            return None
        await connection.execute(
            insert(CredentialRow)
            .values(
                credential_id=uuid.uuid4(),
                user_id=user_id,
                badge_id=badge_id,
                instance=instance,
                subject_id=uuid.uuid4(),
            )
            .on_conflict_do_nothing(
                index_elements=["user_id", "badge_id", "instance"], index_where=CredentialRow.revoked_at.is_(None)
            )
        )
        row = (await connection.execute(select(CredentialRow).where(*_live(user_id, badge_id, instance)))).one()
    return CredentialRecord(
        row.credential_id,
        badge_id,
        instance,
        award.version,
        award.awarded_at,
        row.subject_id,
        row.status_index,
        row.issued_at,
    )


def _live(user_id: uuid.UUID, badge_id: str, instance: str) -> list[Any]:
    return [
        CredentialRow.user_id == user_id,
        CredentialRow.badge_id == badge_id,
        CredentialRow.instance == instance,
        CredentialRow.revoked_at.is_(None),
    ]


async def revoke_award_credential(
    engine: AsyncEngine, user_id: uuid.UUID, badge_id: str, instance: str, reason: str
) -> uuid.UUID | None:
    """Revoke the member's live credential for an award; returns its id (None: there was none)."""
    async with engine.begin() as connection:
        return await connection.scalar(
            update(CredentialRow)
            .where(*_live(user_id, badge_id, instance))
            .values(revoked_at=func.now(), revocation_reason=reason)
            .returning(CredentialRow.credential_id)
        )


async def revoke_member_credentials(connection: AsyncConnection[Any], user_id: uuid.UUID) -> int:
    """At erasure, in its transaction: every credential of the member revoked and cut loose from
    them (the rows stay, naming no one, so their bits stay set). Returns how many rows it cut."""
    cursor = await connection.execute(
        "UPDATE credentials SET user_id = NULL, revoked_at = coalesce(revoked_at, now()),"
        " revocation_reason = coalesce(revocation_reason, 'member-erased') WHERE user_id = %s",
        (user_id,),
    )
    return cursor.rowcount


async def revoked_indexes(engine: AsyncEngine, list_number: int) -> list[int]:
    """The bits set in status list `list_number` (from 1): credentials revoked, and credentials
    whose award no longer exists."""
    first = (list_number - 1) * STATUS_LIST_SIZE
    award = and_(
        AwardRow.user_id == CredentialRow.user_id,
        AwardRow.badge_id == CredentialRow.badge_id,
        AwardRow.instance == CredentialRow.instance,
    )
    query = (
        select(CredentialRow.status_index - first)
        .outerjoin(AwardRow, award)
        .where(
            CredentialRow.status_index >= first,
            CredentialRow.status_index < first + STATUS_LIST_SIZE,
            CredentialRow.revoked_at.is_not(None) | AwardRow.id.is_(None),
        )
    )
    async with engine.connect() as connection:
        return list(await connection.scalars(query))


async def status_lists(engine: AsyncEngine) -> int:
    """How many status lists there are (at least one, possibly empty)."""
    async with engine.connect() as connection:
        highest = await connection.scalar(select(func.max(CredentialRow.status_index)))
    return 1 if highest is None else int(highest) // STATUS_LIST_SIZE + 1
