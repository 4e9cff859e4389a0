"""Open Badges 3.0 credentials for members' awards: issuing (signed with the issuer's current key),
the status lists that revoke them, the published keys, and verification as any verifier would do
it. The routes (`routes/credentials.py`) call this; the SQL is in `db/credentials.py` and the
credential itself is built and checked in `domain/credentials.py`."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey
from jwt.algorithms import ECAlgorithm
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.config import Settings
from badges.db.audit import record_audit
from badges.db.catalogue import definition_versions
from badges.db.credentials import (
    CredentialRecord,
    award_credential,
    issuer_public_keys,
    revoke_award_credential,
    revoked_indexes,
    signing_key,
)
from badges.db.keys import KeyStore
from badges.domain.credentials import (
    ALGORITHM,
    STATUS_LIST_SIZE,
    Check,
    Issuer,
    Reading,
    Recipient,
    StatusEntry,
    achievement,
    normalise_email,
    open_badge_credential,
    read_credential,
    status_bit,
    status_list_credential,
    status_of,
    timestamp,
)
from badges.domain.definitions import BadgeDefinition, TiersRule


class NoSuchAward(Exception):
    """The member holds no award of that badge and instance."""


@dataclass(frozen=True)
class IssuedCredential:
    record: CredentialRecord
    credential: dict[str, Any]
    jwt: str
    status: StatusEntry


class CredentialService:
    def __init__(
        self,
        engine: AsyncEngine,
        pool: AsyncConnectionPool,
        keys: KeyStore,
        settings: Settings,
    ) -> None:
        self._engine = engine
        self._pool = pool
        self._keys = keys
        self._rotation = timedelta(days=settings.issuer_key_rotation_days)
        self.base_url = settings.public_url.rstrip("/")
        self.issuer = Issuer(
            id=f"{self.base_url}/v1/credentials/issuer", name=settings.credential_issuer_name, url=self.base_url
        )

    def key_uri(self, kid: str) -> str:
        """What a JWT's `kid` says: a URL that answers with the public key (a JWK)."""
        return f"{self.base_url}/v1/credentials/keys/{kid}"

    def status_list_url(self, number: int) -> str:
        return f"{self.base_url}/v1/credentials/status/{number}"

    def achievement_id(self, badge: BadgeDefinition) -> str:
        return f"{self.base_url}/v1/credentials/achievements/{badge.badge_id}/{badge.version}"

    async def definition(self, badge_id: str, version: int) -> BadgeDefinition | None:
        """The badge version an award was earned under (None: no such version)."""
        return next(
            (
                found.definition
                for found in await definition_versions(self._engine, badge_id)
                if found.definition.version == version
            ),
            None,
        )

    def achievement(self, badge: BadgeDefinition) -> dict[str, Any]:
        """The badge version as an OB 3.0 `Achievement`, as credentials carry it (any instance:
        the criteria of a tiered badge name its first tier)."""
        return achievement(
            badge, self.achievement_id(badge), badge.rule.tiers[0].name if isinstance(badge.rule, TiersRule) else ""
        )

    async def issue(self, member_id: uuid.UUID, badge_id: str, instance: str, email: str) -> IssuedCredential:
        """A signed credential for one of the member's awards, naming them only by a salted hash
        of `email`; audited. The same credential (id, subject id, status bit) each time, freshly
        salted and signed, until it is revoked."""
        record = await award_credential(self._engine, member_id, badge_id, instance)
        if record is None:
            raise NoSuchAward(f"You hold no award {badge_id!r} / {instance!r}.")
        badge = await self.definition(badge_id, record.version)
        if badge is None:  # awards keep their version, and versions are never deleted
            raise NoSuchAward(f"The definition of {badge_id!r} version {record.version} is missing.")
        now = datetime.now(UTC)
        status = StatusEntry(
            self.status_list_url(record.status_index // STATUS_LIST_SIZE + 1), record.status_index % STATUS_LIST_SIZE
        )
        credential = open_badge_credential(
            credential_id=f"urn:uuid:{record.credential_id}",
            issuer=self.issuer,
            badge=badge,
            achievement_id=self.achievement_id(badge),
            instance=instance,
            recipient=Recipient(
                subject_id=f"urn:uuid:{record.subject_id}",
                identity_type="emailAddress",
                identifier=normalise_email(email),
                salt=secrets.token_urlsafe(16),
            ),
            awarded_at=record.awarded_at,
            status=status,
        )
        key = await signing_key(self._engine, self._keys, now, self._rotation)
        token = sign(credential, key.private_key, self.key_uri(key.kid))
        await self._audit(
            member_id,
            "credential.issued",
            badge_id,
            instance,
            "the member asked for a portable credential",
            {"credentialId": str(record.credential_id), "identityType": "emailAddress", "kid": key.kid},
        )
        return IssuedCredential(record, credential, token, status)

    async def revoke(self, member_id: uuid.UUID, badge_id: str, instance: str) -> uuid.UUID | None:
        """Revoke the member's credential for an award at their request; audited."""
        revoked = await revoke_award_credential(self._engine, member_id, badge_id, instance, "member-request")
        if revoked is not None:
            await self._audit(
                member_id,
                "credential.revoked",
                badge_id,
                instance,
                "the member asked for their credential to be revoked",
                {"credentialId": str(revoked)},
            )
        return revoked

    async def _audit(
        self, member_id: uuid.UUID, action: str, badge_id: str, instance: str, purpose: str, details: dict[str, str]
    ) -> None:
        """One audit record of the member acting on their own credential."""
        await record_audit(
            self._pool,
            actor="member",
            actor_role="user",
            action=action,
            subject=member_id,
            resource=f"/v1/me/badges/{badge_id}/credentials/{instance}",
            purpose=purpose,
            details=details,
        )

    async def public_keys(self) -> list[dict[str, Any]]:
        """Every key the issuer signed with, as JWKs whose `kid` is the URI JWT headers name."""
        return [
            {**jwk, "kid": self.key_uri(kid), "alg": "ES256", "use": "sig"}
            for kid, jwk in await issuer_public_keys(self._engine)
        ]

    async def status_list(self, number: int) -> str:
        """Status list `number` as a signed credential (a Compact JWS), as of now."""
        now = datetime.now(UTC)
        document = status_list_credential(
            list_url=self.status_list_url(number),
            issuer=self.issuer,
            valid_from=now,
            revoked=await revoked_indexes(self._engine, number),
        )
        key = await signing_key(self._engine, self._keys, now, self._rotation)
        return sign(document, key.private_key, self.key_uri(key.kid))

    async def verify(self, token: str) -> Reading:
        """Check a credential as a verifier elsewhere would: the issuer's published keys, the
        signature, its claims and dates, then its bit in the signed status list it names."""
        keys = {jwk["kid"]: _public_key(jwk) for jwk in await self.public_keys()}
        now = datetime.now(UTC)
        reading = read_credential(token, keys, self.issuer.id, now)
        if reading.credential is None:
            return reading
        return Reading([*reading.checks, await self._status_check(reading.credential, keys, now)], reading.credential)

    async def _status_check(
        self, credential: dict[str, Any], keys: dict[str, EllipticCurvePublicKey], now: datetime
    ) -> Check:
        entry = status_of(credential)
        if entry is None:
            return Check("status", False, "the credential names no Bitstring Status List entry")
        prefix = f"{self.base_url}/v1/credentials/status/"
        number = entry.list_url.removeprefix(prefix)
        if not entry.list_url.startswith(prefix) or not number.isdigit() or int(number) < 1:
            return Check("status", False, f"the status list {entry.list_url!r} is not this issuer's")
        listing = read_credential(await self.status_list(int(number)), keys, self.issuer.id, now)
        if listing.credential is None:
            return Check("status", False, "the status list does not verify")
        try:
            revoked = status_bit(listing.credential["credentialSubject"]["encodedList"], entry.index)
        except (KeyError, TypeError, ValueError) as error:
            return Check("status", False, f"the status list cannot be read: {error}")
        if revoked:
            return Check("status", False, "revoked")
        return Check("status", True, "not revoked")


def sign(credential: Mapping[str, Any], private_key: EllipticCurvePrivateKey, kid: str) -> str:
    """The credential as a Compact JWS (OB 3.0 "JSON Web Token Proof Format"): the credential is
    the payload, with `iss`, `jti`, `sub` and `nbf` (and `exp` for a `validUntil`) from it. Not in
    `domain/`: ECDSA draws a random nonce."""
    claims = dict(credential)
    claims["iss"] = credential["issuer"]["id"]
    claims["jti"] = credential["id"]
    claims["sub"] = credential["credentialSubject"]["id"]
    claims["nbf"] = timestamp(credential["validFrom"])
    if "validUntil" in credential:
        claims["exp"] = timestamp(credential["validUntil"])
    return jwt.encode(claims, private_key, algorithm=ALGORITHM, headers={"kid": kid, "typ": "JWT"})


def _public_key(jwk: dict[str, Any]) -> EllipticCurvePublicKey:
    key = ECAlgorithm.from_jwk(jwk)
    assert isinstance(key, EllipticCurvePublicKey)
    return key
