"""The TrueLayer sandbox's own endpoints (not TrueLayer's), all under `/_sandbox`: the member
authorises without a browser, tests arm faults, add and post transactions, lapse tokens and
consents, and read a connection's ground truth. Faults never apply to them.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from badges.banking.sandbox.truelayer.bank import SCOPES
from badges.banking.sandbox.truelayer.deps import NamedConnection, SandboxBank, named_connection
from badges.banking.sandbox.truelayer.errors import TrueLayerError
from badges.banking.sandbox.truelayer.faults import Fault
from badges.banking.sandbox.truelayer.schemas import FaultRequest, NewTransactions
from badges.banking.sandbox.truelayer.wire import Posting, hex_id

router = APIRouter(prefix="/_sandbox")


@router.get("/authorize")
async def authorize(request: Request, bank: SandboxBank) -> Response:
    """The member "authorises" as `user` (default `john`): a 302 to `redirect_uri?code=…&state=…`."""
    query = request.query_params
    if query.get("client_id") != bank.client_id:
        raise TrueLayerError(400, "invalid_client", "Unknown client_id.")
    redirect_uri = query.get("redirect_uri")
    if not redirect_uri:
        raise TrueLayerError(400, "invalid_request", "redirect_uri is required.")
    reauth = query.get("reauth_id")
    credentials_id = bank.reauth.pop(reauth, None) if reauth else None
    if reauth and credentials_id is None:
        raise TrueLayerError(400, "invalid_request", "Unknown or used reauthentication link.")
    code = secrets.token_urlsafe(24)
    bank.codes[code] = (bank.client_id, redirect_uri, credentials_id, query.get("user", "john"))
    answer = {"code": code, "scope": " ".join(SCOPES)}
    if query.get("state"):
        answer["state"] = query["state"]
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(answer)}", status_code=302)


@router.post("/faults")
async def faults(body: FaultRequest, bank: SandboxBank) -> dict[str, Any]:
    bank.fault = Fault(body.status, body.count, body.delay_seconds)
    return {"status": body.status, "count": body.count, "delay_seconds": body.delay_seconds}


@router.get("/connections/{credentials_id}")
async def ground_truth(connection: NamedConnection) -> Response:
    return JSONResponse(
        {
            "credentials_id": connection.credentials_id,
            "user": connection.user,
            "consent_expires_at": connection.consent_expires_at.isoformat(),
            "accounts": connection.accounts,
            "booked": [p.render("GBP", None) | {"account_id": p.account_id} for p in connection.booked],
            "pending": [p.render("GBP", None) | {"account_id": p.account_id} for p in connection.pending],
        }
    )


@router.post("/connections/{credentials_id}/transactions")
async def add_transactions(credentials_id: str, body: NewTransactions, bank: SandboxBank) -> Response:
    # Looked up here, not injected: a body that does not validate is answered 422 before an unknown connection's 404.
    connection = named_connection(bank, credentials_id)
    aliases = {"current": connection.accounts[0]["account_id"], "savings": connection.accounts[1]["account_id"]}
    created = []
    for item in body.transactions:
        account_id = aliases.get(item.account, item.account)
        if connection.account(account_id) is None:
            raise TrueLayerError(404, "account_not_found", f"No account {item.account}.")
        posting = Posting(
            hex_id(connection.rng),
            account_id,
            item.timestamp or datetime.now(UTC),
            item.description,
            item.amount.quantize(Decimal("0.01")),
            item.transaction_category,
            item.transaction_classification,
            item.merchant_name,
        )
        (connection.pending if item.pending else connection.booked).append(posting)
        created.append(posting.transaction_id)
    return JSONResponse({"transaction_ids": created})


@router.post("/connections/{credentials_id}/pending/{transaction_id}/post")
async def post_pending(connection: NamedConnection, transaction_id: str) -> Response:
    """A pending transaction posts: a new booked transaction with a new id, as TrueLayer reports it."""
    posting = next((p for p in connection.pending if p.transaction_id == transaction_id), None)
    if posting is None:
        raise TrueLayerError(404, "not_found", "No such pending transaction.")
    connection.pending.remove(posting)
    booked = Posting(**{**posting.__dict__, "transaction_id": hex_id(connection.rng)})
    connection.booked.append(booked)
    return JSONResponse({"transaction_id": booked.transaction_id})


@router.post("/connections/{credentials_id}/expire-consent")
async def expire_consent(connection: NamedConnection) -> Response:
    connection.consent_expires_at = datetime.now(UTC) - timedelta(seconds=1)
    return JSONResponse({"consent_expires_at": connection.consent_expires_at.isoformat()})


@router.post("/connections/{credentials_id}/expire-access-token")
async def expire_access_token(connection: NamedConnection) -> Response:
    connection.access_expires_at = datetime.now(UTC) - timedelta(seconds=1)
    return JSONResponse({})


@router.post("/connections/{credentials_id}/revoke-refresh-token")
async def revoke_refresh_token(connection: NamedConnection) -> Response:
    connection.refresh_token = None
    return JSONResponse({})
