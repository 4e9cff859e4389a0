"""The TrueLayer sandbox's memory: authorisation codes, reauthentication sessions and connections.

A connection is TrueLayer's "credentials": one member's consent at one provider, with its data.
Access tokens are short-lived and only the newest one per connection works (as at TrueLayer);
refresh tokens are stable; the consent lasts `consent_days`.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any

from badges.banking.sandbox.truelayer.faults import Fault
from badges.banking.sandbox.truelayer.history import generate
from badges.banking.sandbox.truelayer.wire import Posting

SCOPES = ("info", "accounts", "balance", "transactions", "offline_access")


@dataclass
class Connection:
    """A TrueLayer "credentials": one member's consent at one provider, with its data."""

    credentials_id: str
    client_id: str
    user: str
    accounts: list[dict[str, Any]]
    opening_balances: dict[str, Decimal]
    booked: list[Posting]
    pending: list[Posting]
    consent_created_at: datetime
    consent_expires_at: datetime
    refresh_token: str | None
    access_token: str | None = None
    access_expires_at: datetime | None = None
    rng: Random = field(default_factory=Random)

    def account(self, account_id: str) -> dict[str, Any] | None:
        return next((item for item in self.accounts if item["account_id"] == account_id), None)

    def balance_of(self, account_id: str) -> Decimal:
        return self.opening_balances[account_id] + sum(
            (p.amount for p in self.booked if p.account_id == account_id), Decimal(0)
        )


@dataclass
class Bank:
    """All state of the sandbox; one per app."""

    client_id: str
    client_secret: str
    access_token_seconds: int
    consent_days: int
    months: int
    seed: str
    today: date | None
    connections: dict[str, Connection] = field(default_factory=dict)
    # code: (client id, redirect_uri, credentials id when re-authenticating, user)
    codes: dict[str, tuple[str, str, str | None, str]] = field(default_factory=dict)
    reauth: dict[str, str] = field(default_factory=dict)  # reauth session id: credentials id
    fault: Fault = field(default_factory=Fault)
    created: int = 0

    def by_access_token(self, token: str) -> Connection | None:
        for connection in self.connections.values():
            if connection.access_token == token:
                return connection
        return None

    def by_refresh_token(self, token: str) -> Connection | None:
        for connection in self.connections.values():
            if connection.refresh_token == token:
                return connection
        return None

    def issue_tokens(self, connection: Connection) -> dict[str, Any]:
        # Only the newest access token works, as at TrueLayer; the refresh token does not change.
        connection.access_token = secrets.token_urlsafe(32)
        connection.access_expires_at = datetime.now(UTC) + timedelta(seconds=self.access_token_seconds)
        return {
            "access_token": connection.access_token,
            "expires_in": self.access_token_seconds,
            "token_type": "Bearer",
            "refresh_token": connection.refresh_token,
            "scope": " ".join(SCOPES),
        }

    def connect(self, client: str, user: str) -> Connection:
        """A new connection for `user`, its history generated through `today` (default: now)."""
        self.created += 1
        now = datetime.now(UTC)
        last_day = self.today or now.date()
        history = generate(user, self.seed, last_day, self.months)
        credentials_id = uuid.UUID(bytes=hashlib.sha256(f"{user}|{self.seed}|{self.created}".encode()).digest()[:16])
        connection = Connection(
            credentials_id=str(credentials_id),
            client_id=client,
            user=user,
            accounts=history.accounts,
            opening_balances=history.opening_balances,
            booked=history.booked,
            pending=history.pending,
            consent_created_at=now,
            consent_expires_at=now + timedelta(days=self.consent_days),
            refresh_token=secrets.token_urlsafe(32),
            rng=Random(f"{user}|{self.seed}|{self.created}|later"),
        )
        self.connections[connection.credentials_id] = connection
        return connection

    def reconsent(self, connection: Connection) -> None:
        """Re-authentication: the same credentials, a fresh consent and refresh token."""
        now = datetime.now(UTC)
        connection.consent_created_at, connection.consent_expires_at = now, now + timedelta(days=self.consent_days)
        connection.refresh_token = secrets.token_urlsafe(32)
