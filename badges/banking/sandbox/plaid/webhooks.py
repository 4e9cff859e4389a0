"""Webhooks out of the sandbox, signed as Plaid signs them.

Each POST carries `Plaid-Verification`: a JWT signed with ES256 (header `alg`, `kid`, `typ`) whose
claims are `iat` and `request_body_sha256`, the hex SHA-256 of the exact body bytes. The public
half is served as a JWK by `/webhook_verification_key/get`. Bodies are indented JSON, as Plaid's
are, so a receiver that re-serialises instead of hashing the raw bytes fails as it would in production.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from badges.banking.sandbox.plaid import errors

# The codes `/sandbox/item/fire_webhook` can fire, with their webhook_type.
WEBHOOK_TYPES = {
    "SYNC_UPDATES_AVAILABLE": "TRANSACTIONS",
    "DEFAULT_UPDATE": "TRANSACTIONS",
    "INITIAL_UPDATE": "TRANSACTIONS",
    "HISTORICAL_UPDATE": "TRANSACTIONS",
    "ERROR": "ITEM",
    "LOGIN_REPAIRED": "ITEM",
    "NEW_ACCOUNTS_AVAILABLE": "ITEM",
    "USER_PERMISSION_REVOKED": "ITEM",
}

log = logging.getLogger(__name__)


class WebhookSigner:
    """One ES256 key pair, made at start-up (a sandbox's webhooks need not outlive it)."""

    def __init__(self, created_at: int) -> None:
        self.kid = str(uuid.uuid4())
        self.created_at = created_at
        self._key = ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key()))
        return {
            "alg": "ES256",
            "crv": public["crv"],
            "kid": self.kid,
            "kty": public["kty"],
            "use": "sig",
            "x": public["x"],
            "y": public["y"],
            "created_at": self.created_at,
            "expired_at": None,
        }

    def sign(self, body: bytes, issued_at: int) -> str:
        claims = {"iat": issued_at, "request_body_sha256": hashlib.sha256(body).hexdigest()}
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid, "typ": "JWT"})


def payload(webhook_code: str, item_id: str) -> dict[str, Any]:
    """The body Plaid sends for `webhook_code` about one item."""
    webhook_type = WEBHOOK_TYPES.get(webhook_code)
    if webhook_type is None:
        raise errors.sandbox_webhook_invalid(f"webhook_code must be one of {', '.join(WEBHOOK_TYPES)}")
    body: dict[str, Any] = {"webhook_type": webhook_type, "webhook_code": webhook_code, "item_id": item_id}
    if webhook_code == "SYNC_UPDATES_AVAILABLE":
        body |= {"initial_update_complete": True, "historical_update_complete": True}
    elif webhook_type == "TRANSACTIONS":
        body |= {"new_transactions": 0, "error": None}
    elif webhook_code == "ERROR":
        body["error"] = errors.item_login_required().body(request_id=None)
    elif webhook_code != "LOGIN_REPAIRED":
        body["error"] = None
    body["environment"] = "sandbox"
    return body


async def deliver(url: str, payload: dict[str, Any], signer: WebhookSigner, issued_at: int) -> None:
    """One attempt, like Plaid's first: a receiver that is down just misses it (logged)."""
    body = json.dumps(payload, indent=2).encode()
    headers = {"Content-Type": "application/json", "Plaid-Verification": signer.sign(body, issued_at)}
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, content=body, headers=headers)
        if response.status_code >= 300:
            log.warning("webhook %s to %s answered %s", payload.get("webhook_code"), url, response.status_code)
    except httpx.HTTPError as error:
        log.warning("webhook %s to %s failed: %s", payload.get("webhook_code"), url, error)
