"""The Yodlee sandbox's memory: registered users, their access tokens, and provider accounts.

A provider account is Yodlee's link of one user to one site (bank), with its accounts and data
and the status of its last refresh. Tokens are per user (client credentials plus `loginName`) and
live `token_seconds`; the admin's token registers users.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any

from badges.banking.sandbox.yodlee.faults import Fault
from badges.banking.sandbox.yodlee.history import generate
from badges.banking.sandbox.yodlee.wire import Entry

# The refresh statuses after which nothing updates until the user logs in again through FastLink.
LOGIN_STATUSES = ("INCORRECT_CREDENTIALS", "ADDL_AUTHENTICATION_REQUIRED", "CONSENT_EXPIRED", "USER_INPUT_REQUIRED")


@dataclass
class ProviderAccount:
    """One user's link to one site, with its data and the status of its last refresh."""

    id: int
    login_name: str
    user: str  # the persona
    accounts: list[dict[str, Any]]
    opening_balances: dict[int, Decimal]
    entries: list[Entry]
    created_at: datetime
    additional_status: str = "AVAILABLE_DATA_RETRIEVED"
    rng: Random = field(default_factory=Random)

    def account(self, account_id: int) -> dict[str, Any] | None:
        return next((item for item in self.accounts if item["id"] == account_id), None)

    def balance_of(self, account_id: int) -> Decimal:
        posted = (e.signed for e in self.entries if e.account_id == account_id and not e.pending)
        return self.opening_balances[account_id] + sum(posted, Decimal(0))

    def render(self) -> dict[str, Any]:
        """Yodlee's provider account resource, with the refresh status of its one dataset."""
        failed = self.additional_status != "AVAILABLE_DATA_RETRIEVED"
        return {
            "id": self.id,
            "providerId": 16441,
            "status": ("USER_INPUT_REQUIRED" if self.additional_status in LOGIN_STATUSES else "FAILED")
            if failed
            else "SUCCESS",
            "isManual": False,
            "createdDate": self.created_at.date().isoformat(),
            "aggregationSource": "USER",
            "dataset": [
                {
                    "name": "BASIC_AGG_DATA",
                    "additionalStatus": self.additional_status,
                    "updateEligibility": "ALLOW_UPDATE_WITH_CREDENTIALS"
                    if self.additional_status in LOGIN_STATUSES
                    else "ALLOW_UPDATE",
                    "lastUpdated": self.created_at.isoformat(),
                }
            ],
        }


@dataclass
class Bank:
    """All state of the sandbox; one per app."""

    client_id: str
    client_secret: str
    admin_login_name: str
    token_seconds: int
    months: int
    seed: str
    today: date | None
    users: set[str] = field(default_factory=set)
    tokens: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # token: (login name, expiry)
    provider_accounts: dict[int, ProviderAccount] = field(default_factory=dict)
    fault: Fault = field(default_factory=Fault)
    calls: int = 0  # calls to Yodlee's endpoints (not the sandbox's own)
    created: int = 0

    def issue_token(self, login_name: str) -> dict[str, Any]:
        token = secrets.token_urlsafe(24)
        now = datetime.now(UTC)
        self.tokens[token] = (login_name, now + timedelta(seconds=self.token_seconds))
        return {"accessToken": token, "issuedAt": now.isoformat(), "expiresIn": self.token_seconds}

    def login_of(self, token: str) -> str | None:
        """The login name a live token was issued for."""
        held = self.tokens.get(token)
        if held is None or datetime.now(UTC) >= held[1]:
            return None
        return held[0]

    def link(self, login_name: str, user: str) -> ProviderAccount:
        """A new provider account for `login_name`, its history generated through `today` (default: now)."""
        self.created += 1
        digest = hashlib.sha256(f"{login_name}|{user}|{self.seed}|{self.created}".encode()).hexdigest()
        account_id = 10_000 + int(digest[:10], 16) % 90_000_000
        last_day = self.today or datetime.now(UTC).date()
        history = generate(user, f"{self.seed}|{login_name}", last_day, self.months, account_id)
        linked = ProviderAccount(
            id=account_id,
            login_name=login_name,
            user=user,
            accounts=history.accounts,
            opening_balances=history.opening_balances,
            entries=history.entries,
            created_at=datetime.now(UTC),
            rng=Random(f"{digest}|later"),
        )
        self.provider_accounts[linked.id] = linked
        return linked
