"""Open Badges 3.0 credentials (1EdTech, on W3C Verifiable Credentials 2.0): built, and checked
once signed as VC-JWTs; pure functions of their inputs (the time and the salt come in as arguments).
Signing, which draws a random ECDSA nonce, is done at the edge (`api/credentials.py`: `sign`).

A credential names its recipient only by a salted SHA-256 of an identifier the member chose to
disclose (an `IdentityObject`) and by a random subject id of its own; it carries no internal id,
token subject, reward or figure of the member's (a badge's own threshold, the same for every
holder, is in its criteria). Revocation is a Bitstring Status List (W3C): one bit per
credential, gzip-compressed and multibase (base64url) encoded, itself a signed credential.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from badges.domain.definitions import (
    AvoidanceRule,
    BadgeDefinition,
    BufferRule,
    ComparativeRule,
    CountRule,
    DistinctRule,
    GoalRule,
    ImprovementRule,
    MilestoneRule,
    StreakRule,
    SustainedRule,
    TiersRule,
    WindowRule,
)

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
ALGORITHM = "ES256"  # P-256: what the issuer keys are (OB 3.0 allows it beside RS256)
# Bits in one status list: the Bitstring Status List's minimum (16 KiB), so a list says little
# about how many credentials exist. Credential n has list n // size + 1, bit n % size.
STATUS_LIST_SIZE = 131_072
# How far a verifier's clock may differ from ours when validity dates are checked.
CLOCK_LEEWAY_SECONDS = 60


@dataclass(frozen=True)
class Issuer:
    """The programme as an OB 3.0 `Profile`: `id` is a URL that answers with this profile."""

    id: str
    name: str
    url: str

    def profile(self) -> dict[str, Any]:
        return {"id": self.id, "type": ["Profile"], "name": self.name, "url": self.url}


@dataclass(frozen=True)
class Recipient:
    """Who the credential is about, as a verifier may learn it: a random subject id (the JWT's
    `sub`) and a salted hash of one identifier the member disclosed."""

    subject_id: str
    identity_type: str  # an OB 3.0 IdentifierTypeEnum value, e.g. "emailAddress"
    identifier: str
    salt: str


@dataclass(frozen=True)
class StatusEntry:
    list_url: str
    index: int

    def entry(self) -> dict[str, Any]:
        return {
            "id": f"{self.list_url}#{self.index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": str(self.index),
            "statusListCredential": self.list_url,
        }


def identity_hash(identifier: str, salt: str) -> str:
    """OB 3.0's IdentityHash: `sha256$` and the hex digest of the identifier followed by the salt."""
    return "sha256$" + hashlib.sha256((identifier + salt).encode()).hexdigest()


def normalise_email(email: str) -> str:
    """Emails are hashed lower-cased and trimmed, so a verifier who hashes what the holder tells
    them gets the same digest however it was typed."""
    return email.strip().lower()


def _amount(minor: int, currency: str) -> str:
    return f"{minor / 100:,.2f} {currency}"


def criteria_in_words(badge: BadgeDefinition, instance: str) -> str:
    """The rule of the badge version an award was earned under, as a sentence. It states the
    badge's threshold, never the member's own figures."""
    rule = badge.rule
    kind = {"attendance": "attended events", "voting": "votes cast", "tool_usage": "uses of a financial calculator"}
    one = {"attendance": "an attended event", "voting": "a vote", "tool_usage": "a use of a financial calculator"}
    match rule:
        case CountRule():
            return f"Recorded {rule.target} {kind[rule.event_type]}."
        case StreakRule():
            return f"Recorded {one[rule.event_type]} on each of {rule.length} consecutive {rule.unit}s."
        case DistinctRule():
            return f"Recorded {kind[rule.event_type]} with {rule.target} different values of {rule.field!r}."
        case WindowRule():
            return f"Recorded {rule.target} {kind[rule.event_type]} within {rule.within_days} days."
        case TiersRule():
            tier = next((tier for tier in rule.tiers if tier.name == instance), rule.tiers[0])
            return f"Reached the {tier.name} tier: {tier.target} {kind[rule.event_type]}."
        case MilestoneRule():
            return f"Saved {_amount(rule.target_minor, rule.currency)} in total, as shown by linked bank accounts."
        case AvoidanceRule():
            category = rule.category.replace("_", " ")
            return f"No {category} spending for {rule.window_days} days of linked bank data."
        case ImprovementRule():
            return _improvement_in_words(badge, rule)
        case SustainedRule():
            return f"Saved at least {rule.minimum:.0%} of income for {rule.months} complete months running."
        case BufferRule():
            months = "month" if rule.months == 1 else "months"
            return f"Held savings worth at least {rule.months:g} {months} of usual spending."
        case GoalRule():
            return "Reached a savings or spending goal the member set."
        case ComparativeRule():
            rank = f"{instance.removeprefix('p')}th" if instance.removeprefix("p").isdigit() else instance
            metric = rule.metric.removesuffix("_minor").replace("_", " ")
            return f"Ranked at or above the {rank} percentile of {metric} among comparable members."
    return badge.description or badge.name


def _improvement_in_words(badge: BadgeDefinition, rule: ImprovementRule) -> str:
    tracking = badge.config.behavior_tracking
    if tracking is None:  # refused by the definition's validation; kept readable all the same
        return f"Improved {rule.category.replace('_', ' ')} from one period to the next."
    period = {"monthly": "month", "quarterly": "quarter", "yearly": "year"}[tracking.tracking_period]
    by = f"{tracking.improvement_threshold:.0%}"
    if rule.category == "savings":
        return (
            f"Saved at least {by} more in one {period} than in the {period} before, as shown by linked bank accounts."
        )
    on = "" if rule.category == "spending" else f" on {rule.category.replace('_', ' ')}"
    return (
        f"Spent at least {by} less{on} in one {period} than in the {period} before, as shown by linked bank accounts."
    )


def iso(moment: datetime) -> str:
    """A UTC date-time to the second, as the credential and its JWT claims carry it."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def achievement(
    badge: BadgeDefinition, achievement_id: str, instance: str, image_url: str | None = None
) -> dict[str, Any]:
    """The badge version as an OB 3.0 `Achievement`: its name, description and rule in words."""
    document: dict[str, Any] = {
        "id": achievement_id,
        "type": ["Achievement"],
        "name": badge.name,
        "description": badge.description or badge.name,
        "criteria": {"narrative": criteria_in_words(badge, instance)},
        "achievementType": "Badge",
    }
    if image_url:
        document["image"] = {"id": image_url, "type": "Image"}
    return document


def open_badge_credential(
    *,
    credential_id: str,
    issuer: Issuer,
    badge: BadgeDefinition,
    achievement_id: str,
    instance: str,
    recipient: Recipient,
    awarded_at: datetime,
    status: StatusEntry,
    image_url: str | None = None,
) -> dict[str, Any]:
    """An `OpenBadgeCredential` for one award, unsigned."""
    return {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": credential_id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": badge.name,
        "issuer": issuer.profile(),
        "validFrom": iso(awarded_at),
        "awardedDate": iso(awarded_at),
        "credentialSubject": {
            "id": recipient.subject_id,
            "type": ["AchievementSubject"],
            "identifier": [
                {
                    "type": "IdentityObject",
                    "hashed": True,
                    "identityHash": identity_hash(recipient.identifier, recipient.salt),
                    "identityType": recipient.identity_type,
                    "salt": recipient.salt,
                }
            ],
            "achievement": achievement(badge, achievement_id, instance, image_url),
        },
        "credentialStatus": status.entry(),
    }


def encode_status_list(revoked: Collection[int], size: int = STATUS_LIST_SIZE) -> str:
    """The list's bits (bit i is index i, most significant bit of each byte first), gzip-compressed,
    as multibase base64url without padding (`u...`)."""
    bits = bytearray(size // 8)
    for index in revoked:
        bits[index // 8] |= 0x80 >> (index % 8)
    compressed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(compressed).decode().rstrip("=")


def status_bit(encoded_list: str, index: int) -> bool:
    """Whether bit `index` of an encoded list is set. Raises ValueError for a list that does not decode."""
    if not encoded_list.startswith("u"):
        raise ValueError("the encoded list is not multibase base64url")
    body = encoded_list[1:]
    bits = gzip.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if not 0 <= index < len(bits) * 8:
        raise ValueError(f"index {index} is outside the list ({len(bits) * 8} entries)")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def status_list_credential(
    *, list_url: str, issuer: Issuer, valid_from: datetime, revoked: Collection[int]
) -> dict[str, Any]:
    """A `BitstringStatusListCredential` for revocation, unsigned."""
    return {
        "@context": [VC_CONTEXT],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer.profile(),
        "validFrom": iso(valid_from),
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode_status_list(revoked),
        },
    }


def timestamp(value: str) -> int:
    """A credential's date-time as a JWT NumericDate."""
    return int(datetime.fromisoformat(value).timestamp())


@dataclass(frozen=True)
class Check:
    """One step of a verification and how it went."""

    name: str  # format | issuer-key | signature | claims | validity | status
    passed: bool
    detail: str


@dataclass(frozen=True)
class Reading:
    """What a verifier makes of a Compact JWS: each check in order (it stops at the first that
    fails, but for `status`, which the caller adds), and the credential if its signature held."""

    checks: list[Check]
    credential: dict[str, Any] | None

    @property
    def verified(self) -> bool:
        return all(check.passed for check in self.checks)


def read_credential(
    token: str, public_keys: Mapping[str, EllipticCurvePublicKey], issuer_id: str, now: datetime
) -> Reading:
    """Check a Compact JWS as any verifier would, up to its status: its form, that it names one of
    the issuer's keys, its signature, that its claims agree with the credential it carries, and
    its validity dates at `now`."""
    checks: list[Check] = []

    def fail(name: str, detail: str) -> Reading:
        checks.append(Check(name, False, detail))
        return Reading(checks, None)

    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as error:
        return fail("format", f"not a Compact JWS: {error}")
    if header.get("alg") != ALGORITHM:
        return fail("format", f"the algorithm must be {ALGORITHM}, not {header.get('alg')!r}")
    checks.append(Check("format", True, "a Compact JWS signed with ES256"))
    key = public_keys.get(str(header.get("kid")))
    if key is None:
        return fail("issuer-key", f"the key {header.get('kid')!r} is not one of the issuer's published keys")
    checks.append(Check("issuer-key", True, f"signed with the issuer's key {header['kid']}"))
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "verify_nbf": False, "verify_aud": False, "verify_iat": False},
        )
    except jwt.InvalidTokenError as error:
        return fail("signature", f"the signature does not hold: {error}")
    checks.append(Check("signature", True, "the signature holds"))
    mismatch = _claims_mismatch(claims, issuer_id)
    if mismatch:
        return fail("claims", mismatch)
    checks.append(Check("claims", True, "iss, jti, sub and nbf agree with the credential"))
    moment = now.timestamp()
    if claims["nbf"] > moment + CLOCK_LEEWAY_SECONDS:
        return fail("validity", f"not valid before {claims['validFrom']}")
    expires = claims.get("exp")
    if expires is not None and (not isinstance(expires, int | float) or expires < moment - CLOCK_LEEWAY_SECONDS):
        return fail("validity", f"expired at {claims.get('validUntil')}")
    checks.append(Check("validity", True, f"valid from {claims['validFrom']}"))
    credential = {name: value for name, value in claims.items() if name not in {"iss", "jti", "sub", "nbf", "exp"}}
    return Reading(checks, credential)


def _claims_mismatch(claims: Mapping[str, Any], issuer_id: str) -> str | None:
    issuer = claims.get("issuer")
    issuer_ref = issuer.get("id") if isinstance(issuer, dict) else issuer
    subject = claims.get("credentialSubject")
    subject_id = subject.get("id") if isinstance(subject, dict) else None
    valid_from = claims.get("validFrom")
    if not isinstance(claims.get("type"), list) or "VerifiableCredential" not in claims["type"]:
        return "the payload is not a verifiable credential"
    if claims.get("iss") != issuer_ref or issuer_ref != issuer_id:
        return f"the issuer is {issuer_ref!r} (iss {claims.get('iss')!r}), not {issuer_id!r}"
    if claims.get("jti") != claims.get("id"):
        return "jti does not match the credential's id"
    if claims.get("sub") != subject_id:
        return "sub does not match credentialSubject.id"
    try:
        same_start = isinstance(valid_from, str) and claims.get("nbf") == timestamp(valid_from)
    except ValueError:
        same_start = False
    if not same_start:
        return "nbf does not match validFrom"
    return None


def status_of(credential: Mapping[str, Any]) -> StatusEntry | None:
    """The credential's revocation entry, if it has one of the Bitstring Status List kind."""
    entry = credential.get("credentialStatus")
    if not isinstance(entry, dict) or entry.get("type") != "BitstringStatusListEntry":
        return None
    try:
        return StatusEntry(str(entry["statusListCredential"]), int(entry["statusListIndex"]))
    except (KeyError, ValueError):
        return None
