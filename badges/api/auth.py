"""Bearer JWTs: issued for local use by the dev route, verified with PyJWT on every request."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import jwt

from badges.api.problems import Problem
from badges.config import Settings

Scope = Literal["user", "operator", "compliance", "admin"]
STAFF_SCOPES: frozenset[str] = frozenset({"operator", "compliance", "admin"})
TOKEN_TTL_SECONDS = 12 * 3600
# A staff token's `sub` is stored as it is wherever that person acts (the audit log's actor, a
# review's resolved_by, a definition's or an integration's created_by): every such column holds
# this many characters, so a longer subject is refused at the door rather than failing a write
# later (a review decision that no column takes would stall the member's workflow). Members are
# stored by a digest of their subject, so theirs is not bounded here.
MAX_STAFF_SUBJECT_LENGTH = 128


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str]
    expires_at: int | None = None  # the token's `exp` (Unix seconds): long-lived connections end there
    # The token's `email` claim (OpenID Connect's), if any: what a member may disclose in an Open
    # Badges credential, hashed. Never stored.
    email: str | None = None

    def require(self, *scopes: str) -> None:
        if not self.scopes.intersection(scopes):
            raise Problem(403, "insufficient-scope", f"This needs one of the scopes: {', '.join(scopes)}")


# The audience of codec session tokens: accepted by /codec/decode and /codec/encode, nowhere else.
CODEC_AUDIENCE_SUFFIX = ":codec"


def issue_token(
    settings: Settings, subject: str, scopes: list[str], ttl: int = TOKEN_TTL_SECONDS, *, codec_only: bool = False
) -> str:
    now = int(time.time())
    claims = {
        "sub": subject,
        "scope": " ".join(scopes),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience + (CODEC_AUDIENCE_SUFFIX if codec_only else ""),
        "iat": now,
        "exp": now + ttl,
    }
    if "@" in subject:  # a dev token for an email address carries it as an identity provider would
        claims["email"] = subject
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def verify_token(settings: Settings, token: str, *, codec_only: bool = False) -> Principal:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=["HS256"],
            audience=settings.jwt_audience + (CODEC_AUDIENCE_SUFFIX if codec_only else ""),
            issuer=settings.jwt_issuer,
            options={"require": ["sub", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Problem(401, "token-expired", "The bearer token has expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise Problem(401, "invalid-token", f"The bearer token is not valid: {exc}") from exc
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise Problem(401, "invalid-token", "The bearer token has no subject.")
    scopes = frozenset(str(claims.get("scope", "")).split())
    if scopes & STAFF_SCOPES and len(subject) > MAX_STAFF_SUBJECT_LENGTH:
        raise Problem(
            401, "invalid-token", f"A staff token's subject is at most {MAX_STAFF_SUBJECT_LENGTH} characters long."
        )
    email = claims.get("email")
    return Principal(
        subject=subject,
        scopes=scopes,
        expires_at=int(claims["exp"]),
        email=email if isinstance(email, str) and "@" in email and claims.get("email_verified") is not False else None,
    )
