"""`python -m badges.cli.demo`: demo members for a fresh `make dev`, made through the public API as a
client would (tokens from /v1/dev/token, so only where BADGES_ENV=dev), with banks linked at the
sandbox bank.

- alice@example.com: Europe/London, consents to open banking and demographics, a saver's bank
  (`user_saver`), three calculator uses (the "calculator explorer" badge);
- bob@example.com: consents to open banking, a gambler's bank (`user_gambler`), a check-in and a
  vote, signed by the `demo-venue` integration (attendance and votes are the event system's to
  report, never a member's own token's).

Idempotent: a member already linked is left as they are.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from badges.domain.signatures import sign

MEMBER_REPORTED = {"tool_usage"}  # what a member's own token may report (BADGES_MEMBER_REPORTED_TYPES)
MEMBERS: list[dict[str, Any]] = [
    {
        "sub": "alice@example.com",
        "persona": "user_saver",
        "scopes": ["open_banking", "demographics"],
        "profile": {
            "timezone": "Europe/London",
            "demographics": {"postcode": "SW1A", "ageRange": "25-34", "dependants": 1, "salaryBracket": "30-45k"},
        },
        "events": [("tool_usage", {"calculatorId": c}) for c in ("budget", "loan", "pension")],
    },
    {
        "sub": "bob@example.com",
        "persona": "user_gambler",
        "scopes": ["open_banking"],
        "profile": {"timezone": "Europe/Dublin"},
        "events": [("attendance", {"eventId": "money-week"}), ("voting", {"propositionId": "p-1"})],
    },
]


class DemoVenue:
    """The demo's event system: an integration whose signed requests report attendance and votes."""

    INTEGRATION_ID = "demo-venue"

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    @classmethod
    def register(cls, client: httpx.Client) -> DemoVenue:
        token = client.post("/v1/dev/token", json={"sub": "demo-admin", "scopes": ["admin"]})
        token.raise_for_status()
        admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
        body = {"integrationId": cls.INTEGRATION_ID, "eventTypes": ["attendance", "voting"]}
        created = client.post("/v1/admin/integrations", json=body, headers=admin)
        if created.status_code == 409:  # made by an earlier run, whose secret is gone: a new one
            created = client.post(f"/v1/admin/integrations/{cls.INTEGRATION_ID}/secret", headers=admin)
        created.raise_for_status()
        return cls(created.json()["secret"].encode())

    def post(self, client: httpx.Client, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        headers = {"content-type": "application/json", "X-Badges-Signature": sign(self.secret, int(time.time()), body)}
        client.post(f"/v1/integrations/{self.INTEGRATION_ID}/events", content=body, headers=headers).raise_for_status()


def seed(api: str, bank: str, client_id: str, secret: str) -> list[str]:
    seeded = []
    venue: DemoVenue | None = None
    with httpx.Client(base_url=api, timeout=30) as client:
        for member in MEMBERS:
            token = client.post("/v1/dev/token", json={"sub": member["sub"], "scopes": ["user"]})
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            if client.get("/v1/me/bank/connections", headers=headers).json().get("connections"):
                continue  # seeded before
            expires = (datetime.now(UTC) + timedelta(days=80)).isoformat()
            scopes = {scope: {"purpose": "demo", "expiresAt": expires} for scope in member["scopes"]}
            client.put("/v1/me/consent", json={"scopes": scopes}, headers=headers).raise_for_status()
            wait_for_consent(client, headers, member["scopes"])
            client.put("/v1/me/profile", json=member["profile"], headers=headers).raise_for_status()
            link = client.post("/v1/me/bank/link-token", json={"provider": "plaid"}, headers=headers)
            link.raise_for_status()
            done = httpx.post(
                f"{bank}/sandbox/link/complete",
                json={
                    "client_id": client_id,
                    "secret": secret,
                    "link_token": link.json()["linkToken"],
                    "username": member["persona"],
                },
                timeout=30,
            )
            done.raise_for_status()
            connect = {"provider": "plaid", "publicToken": done.json()["public_token"]}
            client.post("/v1/me/bank/connections", json=connect, headers=headers).raise_for_status()
            me = client.get("/v1/me", headers=headers).json()["userId"]
            for index, (kind, data) in enumerate(member["events"]):
                event = {
                    "id": f"demo-{index}",
                    "type": kind,
                    "userId": member["sub"],
                    "eventData": data,
                    "timestamp": datetime.now(UTC).isoformat(),
                }
                if kind in MEMBER_REPORTED:
                    client.post("/v1/events", json=event, headers=headers).raise_for_status()
                else:
                    venue = venue or DemoVenue.register(client)
                    venue.post(client, event)
            seeded.append(f"{member['sub']} ({me})")
    return seeded


def wait_for_consent(client: httpx.Client, headers: dict[str, str], scopes: list[str]) -> None:
    """Consent is applied by the member's ConsentWorkflow: wait until it is projected."""
    for _ in range(100):
        held = client.get("/v1/me/consent", headers=headers).json()["scopes"]
        if all(held.get(scope, {}).get("status") == "active" for scope in scopes):
            return
        time.sleep(0.1)
    raise SystemExit("consent was not recorded within 10 s: is the worker running?")


def main() -> None:
    api = os.environ.get("BADGES_API_URL", "http://localhost:8000")
    bank = os.environ.get("PLAID_HOST", "http://127.0.0.1:8100")
    seeded = seed(
        api,
        bank,
        os.environ.get("PLAID_CLIENT_ID", "sandbox-client-id"),
        os.environ.get("PLAID_SECRET", "sandbox-secret"),
    )
    print("demo members: " + (", ".join(seeded) if seeded else "already there"), file=sys.stderr)


if __name__ == "__main__":
    main()
