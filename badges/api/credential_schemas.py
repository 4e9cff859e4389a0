"""Bodies of the Open Badges credential routes (`routes/credentials.py`), camelCase on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from badges.domain.wire import WireModel


class Jwk(BaseModel):
    """One of the issuer's public keys (RFC 7517): a P-256 key for ES256 signatures."""

    kty: Literal["EC"]
    crv: Literal["P-256"]
    x: str
    y: str
    kid: str = Field(description="the URI a credential's JWT header names; it answers with this key")
    alg: Literal["ES256"]
    use: Literal["sig"]


class JwkSet(BaseModel):
    keys: list[Jwk]


class IssuerProfileView(BaseModel):
    """The programme as an Open Badges 3.0 `Profile`: what a credential's `issuer` names."""

    id: str
    type: list[str]
    name: str
    url: str


class CriteriaView(BaseModel):
    narrative: str


class AchievementView(WireModel):
    """A badge version as an Open Badges 3.0 `Achievement`."""

    id: str
    type: list[str]
    name: str
    description: str
    criteria: CriteriaView
    achievement_type: str


class IssuedCredentialView(WireModel):
    """An `OpenBadgeCredential` for one of your awards: `jwt` is the signed credential (a VC-JWT,
    what a wallet or a verifier takes: save it as a `.jwt` file); `credential` is what it says."""

    credential_id: str = Field(description="the credential's `id` (urn:uuid:…); the same each time until revoked")
    jwt: str
    credential: dict[str, Any]
    issued_at: datetime = Field(description="when this credential was first issued (re-signed at every request)")
    status_list_credential: str
    status_list_index: int
    media_type: Literal["application/vc+jwt"] = "application/vc+jwt"
    file_name: str = Field(description="a name to save `jwt` under")


class VerifyRequest(WireModel):
    model_config = ConfigDict(extra="forbid")

    # A VC-JWT is a few kilobytes of ASCII; the bound keeps any string of its length, however
    # escaped in JSON, under the 64 KiB body limit, so an over-long one is a 422, never a 413.
    credential: str = Field(min_length=1, max_length=10_000, description="a credential as a Compact JWS (VC-JWT)")


class CheckView(WireModel):
    check: Literal["format", "issuer-key", "signature", "claims", "validity", "status"]
    passed: bool
    detail: str


class VerificationView(WireModel):
    """Whether the credential holds, each check in order (they stop at the first that fails, but
    for the status); what it says when its signature held."""

    verified: bool
    checks: list[CheckView]
    credential_id: str | None = None
    achievement: str | None = Field(None, description="the achievement's name")
    valid_from: str | None = None
    revoked: bool | None = Field(None, description="true: revoked; null: the status could not be read")


class RevokedCredential(WireModel):
    credential_id: uuid.UUID
    revoked: Literal[True] = True
