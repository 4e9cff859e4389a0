"""Yodlee's endpoints, the subset our adapter uses (API v1.1, in Yodlee's shapes): tokens, user
registration, provider accounts (the refresh status, deletion), accounts and transactions paged by
date (`fromDate`, `toDate`, `skip`, `top`) with their count; and the FastLink stand-in page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from badges.banking.sandbox.personas import PERSONAS
from badges.banking.sandbox.yodlee.bank import ProviderAccount
from badges.banking.sandbox.yodlee.deps import OwnedProviderAccount, SandboxBank, User, api_version
from badges.banking.sandbox.yodlee.errors import YodleeError
from badges.banking.sandbox.yodlee.schemas import RegisterRequest

router = APIRouter(dependencies=[Depends(api_version)])
fastlink = APIRouter()

MAX_TOP = 500  # Yodlee's largest page of transactions


@fastlink.post("/fastlink", response_class=HTMLResponse)
async def fastlink_page(request: Request, bank: SandboxBank) -> Response:
    """In place of FastLink, which the client opens by posting the user's token (`accessToken`,
    form-encoded: never in the URL) to it: a page that links to completing the link as one of the
    shared personas."""
    query = request.query_params
    form = {name: values[0] for name, values in parse_qs((await request.body()).decode()).items()}
    if bank.login_of(form.get("accessToken", "")) is None:
        raise YodleeError(401, "Y008", "Invalid or expired accessToken.")
    if not query.get("redirect"):
        raise YodleeError(400, "Y800", "redirect is required.")
    target = f"/_sandbox/fastlink/complete?{urlencode({**dict(query), 'accessToken': form['accessToken']})}"
    links = ", ".join(f'<a href="{target}&amp;user={name}">{name}</a>' for name in PERSONAS)
    return HTMLResponse(f"<!doctype html><title>Dag Site</title><h1>Dag Site (FastLink)</h1><p>Sign in as {links}.</p>")


@router.post("/auth/token", status_code=201)
async def token(
    request: Request, bank: SandboxBank, login_name: Annotated[str | None, Header(alias="loginName")] = None
) -> Response:
    # Form-encoded as at Yodlee; parsed by hand, since FastAPI's Form needs python-multipart.
    form = {name: values[0] for name, values in parse_qs((await request.body()).decode()).items()}
    if form.get("clientId") != bank.client_id or form.get("secret") != bank.client_secret:
        raise YodleeError(401, "Y004", "Invalid clientId or secret.")
    if not login_name:
        raise YodleeError(400, "Y016", "loginName header missing.")
    if login_name != bank.admin_login_name and login_name not in bank.users:
        raise YodleeError(400, "Y800", "Invalid value for loginName.")
    return JSONResponse({"token": bank.issue_token(login_name)}, status_code=201)


@router.post("/user/register")
async def register(body: RegisterRequest, bank: SandboxBank, user: User) -> Response:
    if user != bank.admin_login_name:
        raise YodleeError(401, "Y020", "Only the admin may register users.")
    name = body.user.loginName
    if name in bank.users:
        raise YodleeError(400, "Y400", "loginName already exists.")
    bank.users.add(name)
    return JSONResponse({"user": {"id": len(bank.users), "loginName": name, "roleType": "INDIVIDUAL"}})


@router.get("/providerAccounts/{provider_account_id}")
async def provider_account(linked: OwnedProviderAccount) -> Response:
    return JSONResponse({"providerAccount": [linked.render()]})


@router.delete("/providerAccounts/{provider_account_id}", status_code=204)
async def delete_provider_account(linked: OwnedProviderAccount, bank: SandboxBank) -> Response:
    del bank.provider_accounts[linked.id]
    return Response(status_code=204)


@router.get("/accounts")
async def accounts(
    bank: SandboxBank, user: User, provider_account_id: Annotated[int | None, Query(alias="providerAccountId")] = None
) -> Response:
    found = []
    for linked in _owned_by(bank.provider_accounts.values(), user, provider_account_id):
        for account in linked.accounts:
            balance = {"amount": float(linked.balance_of(account["id"])), "currency": account["currency"]}
            found.append({**account, "balance": balance, "currentBalance": balance})
    return JSONResponse({"account": found} if found else {})  # Yodlee answers {} when there are none


@router.get("/transactions")
async def transactions(
    bank: SandboxBank,
    user: User,
    account_id: Annotated[int, Query(alias="accountId")],
    from_date: Annotated[date | None, Query(alias="fromDate")] = None,
    to_date: Annotated[date | None, Query(alias="toDate")] = None,
    skip: Annotated[int, Query(ge=0)] = 0,
    top: Annotated[int, Query(ge=1, le=MAX_TOP)] = MAX_TOP,
) -> Response:
    linked, account = _account(bank, user, account_id)
    window = _window(linked, account_id, from_date, to_date)
    page = [entry.render(account["currency"]) for entry in window[skip : skip + top]]
    return JSONResponse({"transaction": page} if page else {})


@router.get("/transactions/count")
async def transactions_count(
    bank: SandboxBank,
    user: User,
    account_id: Annotated[int, Query(alias="accountId")],
    from_date: Annotated[date | None, Query(alias="fromDate")] = None,
    to_date: Annotated[date | None, Query(alias="toDate")] = None,
) -> Response:
    linked, _ = _account(bank, user, account_id)
    count = len(_window(linked, account_id, from_date, to_date))
    return JSONResponse({"transaction": {"TOTAL": {"count": count}}})


def _owned_by(linked: Any, user: str, provider_account_id: int | None) -> list[ProviderAccount]:
    return [p for p in linked if p.login_name == user and provider_account_id in (None, p.id)]


def _account(bank: SandboxBank, user: str, account_id: int) -> tuple[ProviderAccount, dict[str, Any]]:
    for linked in _owned_by(bank.provider_accounts.values(), user, None):
        account = linked.account(account_id)
        if account is not None:
            return linked, account
    raise YodleeError(400, "Y800", "Invalid value for accountId.")


def _window(linked: ProviderAccount, account_id: int, from_date: date | None, to_date: date | None) -> list[Any]:
    """The account's transactions dated within the window (default: the last 90 days), newest
    first as Yodlee answers, ties by id."""
    today = datetime.now(UTC).date()
    start, end = from_date or today - timedelta(days=90), to_date or today
    if start > end:
        raise YodleeError(400, "Y800", "Invalid value for fromDate: after toDate.")
    chosen = [e for e in linked.entries if e.account_id == account_id and start <= e.day <= end]
    return sorted(chosen, key=lambda e: (e.day, e.id), reverse=True)
