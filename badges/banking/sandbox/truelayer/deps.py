"""The dependencies TrueLayer sandbox endpoints start with: the bank, the caller's authorised
connection (from its bearer token), the account named in the path, the connection a control names.

Each raises TrueLayer's error when its guard fails, so routes hold only what they answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from badges.banking.sandbox.truelayer.bank import Bank, Connection
from badges.banking.sandbox.truelayer.errors import TrueLayerError


def _bank(request: Request) -> Bank:
    bank: Bank = request.app.state.bank
    return bank


SandboxBank = Annotated[Bank, Depends(_bank)]


def _authorised(bank: SandboxBank, authorization: Annotated[str | None, Header()] = None) -> Connection:
    """The connection whose current access token the caller bears, while its consent lasts."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    connection = bank.by_access_token(token) if token else None
    now = datetime.now(UTC)
    if connection is None or connection.access_expires_at is None or now >= connection.access_expires_at:
        raise TrueLayerError(401, "invalid_token", "Invalid access token.")
    if now >= connection.consent_expires_at:
        raise TrueLayerError(403, "access_denied", "Consent has expired: the user must reauthenticate.")
    return connection


AuthorisedConnection = Annotated[Connection, Depends(_authorised)]


def _account(connection: AuthorisedConnection, account_id: str) -> dict[str, Any]:
    """The account resource `account_id` of the caller's connection."""
    account = connection.account(account_id)
    if account is None:
        raise TrueLayerError(404, "account_not_found", "Account not found.")
    return account


AuthorisedAccount = Annotated[dict[str, Any], Depends(_account)]


def named_connection(bank: SandboxBank, credentials_id: str) -> Connection:
    """The connection a sandbox control names by its credentials id (no token needed)."""
    connection = bank.connections.get(credentials_id)
    if connection is None:
        raise TrueLayerError(404, "not_found", "No such connection.")
    return connection


NamedConnection = Annotated[Connection, Depends(named_connection)]
