"""TrueLayer's endpoints, the subset our adapter uses: the auth server and Data API v1, in TrueLayer's shapes."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from badges.banking.sandbox.truelayer.bank import SCOPES
from badges.banking.sandbox.truelayer.deps import AuthorisedAccount, AuthorisedConnection, SandboxBank
from badges.banking.sandbox.truelayer.errors import TrueLayerError
from badges.banking.sandbox.truelayer.institutions import PROVIDER
from badges.banking.sandbox.truelayer.schemas import ReauthRequest

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
async def auth_dialog(request: Request, bank: SandboxBank) -> Response:
    """The auth link target: in place of TrueLayer's dialog, a page linking to the authorisation."""
    query = request.query_params
    if query.get("response_type") != "code" or query.get("client_id") != bank.client_id:
        raise TrueLayerError(400, "invalid_request", "response_type=code and a known client_id are required.")
    if not query.get("redirect_uri"):
        raise TrueLayerError(400, "invalid_request", "redirect_uri is required.")
    target = f"/_sandbox/authorize?{urlencode(dict(query))}"
    return HTMLResponse(
        "<!doctype html><title>Mock Bank</title><h1>Mock Bank</h1>"
        f'<p>Sign in as <a href="{target}&amp;user=john">john</a>, <a href="{target}&amp;user=saver">saver</a>, '
        f'<a href="{target}&amp;user=gambler">gambler</a>, <a href="{target}&amp;user=fastfood">fastfood</a>.</p>'
    )


@router.post("/connect/token")
async def token(request: Request, bank: SandboxBank) -> Response:
    # Form-encoded as at TrueLayer; parsed by hand, since FastAPI's Form needs python-multipart.
    form = {name: values[0] for name, values in parse_qs((await request.body()).decode()).items()}
    grant_type, client_id, client_secret = form.get("grant_type"), form.get("client_id"), form.get("client_secret")
    code, redirect_uri, refresh_token = form.get("code"), form.get("redirect_uri"), form.get("refresh_token")
    if client_id != bank.client_id or client_secret != bank.client_secret:
        raise TrueLayerError(400, "invalid_client", "Client authentication failed.")
    if grant_type == "authorization_code":
        granted = bank.codes.pop(code or "", None)
        if granted is None or granted[1] != redirect_uri:
            raise TrueLayerError(400, "invalid_grant", "The code is invalid, used, or for another redirect_uri.")
        _, _, credentials_id, user = granted
        existing = bank.connections.get(credentials_id) if credentials_id else None
        if existing is not None:  # re-authentication: the same credentials, a fresh consent
            bank.reconsent(existing)
            return JSONResponse(bank.issue_tokens(existing))
        return JSONResponse(bank.issue_tokens(bank.connect(client_id, user)))
    if grant_type == "refresh_token":
        connection = bank.by_refresh_token(refresh_token or "")
        if connection is None or datetime.now(UTC) >= connection.consent_expires_at:
            raise TrueLayerError(400, "invalid_grant", "The refresh token is invalid or the consent has expired.")
        return JSONResponse(bank.issue_tokens(connection))
    raise TrueLayerError(400, "unsupported_grant_type", f"Grant type {grant_type!r} is not supported.")


@router.post("/v1/reauthuri")
async def reauth_uri(body: ReauthRequest, request: Request, bank: SandboxBank) -> Response:
    if body.client_id != bank.client_id:
        raise TrueLayerError(400, "invalid_client", "Unknown client_id.")
    connection = next(
        (c for c in bank.connections.values() if c.refresh_token == body.refresh_token and c.refresh_token),
        None,
    )
    if connection is None:
        raise TrueLayerError(400, "invalid_grant", "Unknown refresh token.")
    session = secrets.token_urlsafe(16)
    bank.reauth[session] = connection.credentials_id
    query = {"client_id": body.client_id, "redirect_uri": body.redirect_uri, "reauth_id": session}
    if body.state:
        query["state"] = body.state
    base = str(request.base_url).rstrip("/")
    return JSONResponse({"result": f"{base}/_sandbox/authorize?{urlencode(query)}"})


@router.delete("/api/delete")
async def delete_credentials(bank: SandboxBank, authorization: Annotated[str | None, Header()] = None) -> Response:
    # Any token the connection was given last revokes it, lapsed or not: no `AuthorisedConnection` here.
    token = (authorization or "").removeprefix("Bearer ").strip()
    connection = bank.by_access_token(token) if token else None
    if connection is None:
        raise TrueLayerError(401, "invalid_token", "Invalid access token.")
    del bank.connections[connection.credentials_id]
    return Response(status_code=200)


@router.get("/data/v1/me")
async def me(connection: AuthorisedConnection) -> Response:
    result = {
        "client_id": connection.client_id,
        "credentials_id": connection.credentials_id,
        "consent_status": "Authorised",
        "consent_status_updated_at": connection.consent_created_at.isoformat(),
        "consent_created_at": connection.consent_created_at.isoformat(),
        "consent_expires_at": connection.consent_expires_at.isoformat(),
        "provider": PROVIDER,
        "scopes": list(SCOPES),
        "privacy_policy": "Feb2021",
    }
    return JSONResponse({"results": [result], "status": "Succeeded"})


@router.get("/data/v1/accounts")
async def accounts(connection: AuthorisedConnection) -> Response:
    return JSONResponse({"results": connection.accounts, "status": "Succeeded"})


@router.get("/data/v1/accounts/{account_id}/balance")
async def balance(account_id: str, connection: AuthorisedConnection, account: AuthorisedAccount) -> Response:
    current = connection.balance_of(account_id)
    held = sum((p.amount for p in connection.pending if p.account_id == account_id), Decimal(0))
    overdraft = 500 if account["account_type"] == "TRANSACTION" else 0
    result = {
        "currency": account["currency"],
        "available": float(current + held + overdraft),
        "current": float(current),
        "overdraft": overdraft,
        "update_timestamp": datetime.now(UTC).isoformat(),
    }
    return JSONResponse({"results": [result], "status": "Succeeded"})


@router.get("/data/v1/accounts/{account_id}/transactions")
async def transactions(
    account_id: str, request: Request, connection: AuthorisedConnection, account: AuthorisedAccount
) -> Response:
    now = datetime.now(UTC)
    try:
        start = _when(request.query_params.get("from"), now - timedelta(days=90))
        end = _when(request.query_params.get("to"), now)
    except ValueError:
        raise TrueLayerError(400, "invalid_date_range", "from and to must be ISO 8601 dates or date-times.") from None
    if start > end:
        raise TrueLayerError(400, "invalid_date_range", "from must not be after to.")
    running = connection.opening_balances[account_id]
    results = []
    for posting in sorted((p for p in connection.booked if p.account_id == account_id), key=lambda p: p.timestamp):
        running += posting.amount
        if start <= posting.timestamp <= end:
            results.append(posting.render(account["currency"], running))
    results.reverse()  # newest first, as most providers answer
    return JSONResponse({"results": results, "status": "Succeeded"})


@router.get("/data/v1/accounts/{account_id}/transactions/pending")
async def pending(account_id: str, connection: AuthorisedConnection, account: AuthorisedAccount) -> Response:
    results = [p.render(account["currency"], None) for p in connection.pending if p.account_id == account_id]
    return JSONResponse({"results": results, "status": "Succeeded"})


def _when(value: str | None, default: datetime) -> datetime:
    """A `from`/`to` parameter: a date (midnight UTC) or a date-time (UTC when naive)."""
    if not value:
        return default
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    instant = datetime.fromisoformat(value)
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
