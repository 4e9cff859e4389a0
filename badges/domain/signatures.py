"""Signed requests: `X-Badges-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t." + body)>`.

Event systems sign what they send us with their integration's secret; we sign award webhooks
with the badge's secret. The same header, and the same checks, both ways. No clock in here:
the caller passes `now`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

SIGNATURE_HEADER = "X-Badges-Signature"
DEFAULT_TOLERANCE_S = 300
SCHEME = "v1"
# A header holds a timestamp and a few signatures; anything longer is not one of ours.
MAX_HEADER_LENGTH = 1024
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

SignatureProblem = Literal["malformed", "stale", "mismatch"]


class SignatureError(Exception):
    """A signature that does not authenticate the request; `reason` says which check failed."""

    def __init__(self, reason: SignatureProblem, detail: str) -> None:
        super().__init__(detail)
        self.reason: SignatureProblem = reason
        self.detail = detail


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The v1 signature: lowercase hex HMAC-SHA256 over `f"{timestamp}."` followed by the body bytes."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def parse(header: str) -> tuple[int, list[str]]:
    """The timestamp and the v1 signatures of a header; unknown schemes are ignored."""
    if not header or len(header) > MAX_HEADER_LENGTH:
        raise SignatureError("malformed", "The signature header is missing or too long.")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("malformed", f"The signature header item {item.strip()!r} is not name=value.")
        if name == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                raise SignatureError("malformed", "The signature header needs one t=<unix seconds>.")
            timestamp = int(value)
        elif name == SCHEME:
            if len(value) != hashlib.sha256().digest_size * 2 or not HEX_DIGITS.issuperset(value):
                raise SignatureError("malformed", "A v1 signature must be 64 hexadecimal digits.")
            signatures.append(value.lower())
    if timestamp is None:
        raise SignatureError("malformed", "The signature header has no t=<unix seconds>.")
    if not signatures:
        raise SignatureError("malformed", "The signature header has no v1=<signature>.")
    return timestamp, signatures


def verify(secret: bytes, header: str, body: bytes, now: int, tolerance_s: int = DEFAULT_TOLERANCE_S) -> str:
    """Check a header against the body; returns the matching v1 signature (for replay bookkeeping).

    Several v1 entries may be sent (the sender rotating its secret); one match is enough. The
    answer is the signature as we compute it, so re-encoding a header (upper-case hex, extra
    entries) does not make a replay look new.
    """
    timestamp, candidates = parse(header)
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(
            "stale", f"The signature timestamp is more than {tolerance_s} s away from the server's clock."
        )
    expected = signature(secret, timestamp, body)
    # Compare with every candidate (no early exit), each in constant time.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(candidate, expected)
    if not matched:
        raise SignatureError("mismatch", "The signature does not match the body and secret.")
    return expected
