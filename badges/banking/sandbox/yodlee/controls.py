"""The Yodlee sandbox's own endpoints (not Yodlee's), all under `/_sandbox`: the user completes
FastLink without a browser, tests arm faults and count calls, add and post transactions, make a
provider account need the user's login, fire data-update notifications, and read a provider
account's ground truth. Faults never apply to them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from badges.banking.sandbox.personas import DEFAULT_USERNAME
from badges.banking.sandbox.yodlee.deps import NamedProviderAccount, SandboxBank, named_provider_account
from badges.banking.sandbox.yodlee.errors import YodleeError
from badges.banking.sandbox.yodlee.faults import Fault
from badges.banking.sandbox.yodlee.schemas import FaultRequest, LoginRequired, NewTransactions
from badges.banking.sandbox.yodlee.wire import Entry

router = APIRouter(prefix="/_sandbox")


@router.get("/fastlink/complete")
async def complete_fastlink(request: Request, bank: SandboxBank) -> Response:
    """The user finishes FastLink as persona `user`: a new provider account (or, with
    `flow=edit&providerAccountId=…`, that one's login repaired); a 302 to
    `redirect?providerAccountId=…&status=SUCCESS&state=…`, what FastLink's callback reports."""
    query = request.query_params
    login_name = bank.login_of(query.get("accessToken", ""))
    if login_name is None:
        raise YodleeError(401, "Y008", "Invalid or expired accessToken.")
    redirect = query.get("redirect")
    if not redirect:
        raise YodleeError(400, "Y800", "redirect is required.")
    if query.get("flow") == "edit":
        linked = named_provider_account(bank, int(query.get("providerAccountId") or 0))
        if linked.login_name != login_name:
            raise YodleeError(404, "Y807", "Resource not found.")
        linked.additional_status = "AVAILABLE_DATA_RETRIEVED"
    else:
        linked = bank.link(login_name, query.get("user", DEFAULT_USERNAME))
    answer = {"providerAccountId": str(linked.id), "status": "SUCCESS"}
    if query.get("state"):
        answer["state"] = query["state"]
    separator = "&" if "?" in redirect else "?"
    return RedirectResponse(f"{redirect}{separator}{urlencode(answer)}", status_code=302)


@router.post("/faults")
async def arm_fault(body: FaultRequest, bank: SandboxBank) -> dict[str, Any]:
    bank.fault = Fault(body.status, body.count, body.delay_seconds)
    return body.model_dump()


@router.delete("/faults")
async def clear_faults(bank: SandboxBank) -> dict[str, Any]:
    bank.fault = Fault()
    return {"cleared": True}


@router.get("/calls")
async def calls(bank: SandboxBank) -> dict[str, Any]:
    return {"calls": bank.calls}


@router.post("/tokens/expire")
async def expire_tokens(bank: SandboxBank) -> dict[str, Any]:
    """Every token issued so far lapses (Yodlee's last 30 minutes)."""
    expired = len(bank.tokens)
    bank.tokens.clear()
    return {"expired": expired}


@router.get("/providerAccounts/{provider_account_id}")
async def ground_truth(linked: NamedProviderAccount) -> Response:
    return JSONResponse(
        {
            "providerAccount": linked.render(),
            "loginName": linked.login_name,
            "user": linked.user,
            "accounts": linked.accounts,
            "transactions": [
                e.render(a["currency"]) for e in linked.entries for a in linked.accounts if a["id"] == e.account_id
            ],
        }
    )


@router.post("/providerAccounts/{provider_account_id}/transactions")
async def add_transactions(provider_account_id: int, body: NewTransactions, bank: SandboxBank) -> Response:
    # Looked up here, not injected: a body that does not validate is answered 422 before an unknown account's 404.
    linked = named_provider_account(bank, provider_account_id)
    aliases = {"checking": linked.accounts[0]["id"], "savings": linked.accounts[1]["id"]}
    created = []
    for item in body.transactions:
        account_id = aliases.get(item.account) or (int(item.account) if item.account.isdigit() else 0)
        if linked.account(account_id) is None:
            raise YodleeError(404, "Y807", f"No account {item.account}.")
        entry = Entry(
            id=10_000_000 + linked.rng.randrange(9_000_000_000),
            account_id=account_id,
            day=item.date or datetime.now(UTC).date(),
            description=item.description,
            amount=abs(item.amount).quantize(Decimal("0.01")),
            debit=item.amount < 0,
            category=item.category,
            category_type=item.category_type,
            labels=tuple(item.labels),
            merchant_name=item.merchant_name,
            pending=item.pending,
        )
        linked.entries.append(entry)
        created.append(entry.id)
    return JSONResponse({"transactionIds": created})


@router.post("/providerAccounts/{provider_account_id}/pending/{transaction_id}/post")
async def post_pending(linked: NamedProviderAccount, transaction_id: int) -> Response:
    """A pending transaction posts: it is replaced by a posted one with a new id, as at Yodlee."""
    entry = next((e for e in linked.entries if e.id == transaction_id and e.pending), None)
    if entry is None:
        raise YodleeError(404, "Y807", "No such pending transaction.")
    linked.entries.remove(entry)
    posted = Entry(**{**entry.__dict__, "id": 10_000_000 + linked.rng.randrange(9_000_000_000), "pending": False})
    linked.entries.append(posted)
    return JSONResponse({"transactionId": posted.id})


@router.post("/providerAccounts/{provider_account_id}/require-login")
async def require_login(linked: NamedProviderAccount, body: LoginRequired) -> Response:
    """The site refuses the stored login: refreshes fail until the user edits it in FastLink."""
    linked.additional_status = body.additional_status
    return JSONResponse({"providerAccount": linked.render()})


@router.post("/providerAccounts/{provider_account_id}/notify")
async def notify(linked: NamedProviderAccount, request: Request) -> Response:
    """Yodlee's REFRESH notification (`REFRESH.PROCESS_COMPLETED`) for this provider account,
    posted to `callbackUrl` (the body's), as Yodlee posts to the subscribed callback."""
    body = await request.json()
    event = {
        "event": {
            "info": "REFRESH.PROCESS_COMPLETED",
            "loginName": linked.login_name,
            "data": {"providerAccount": [{"id": linked.id, "status": linked.render()["status"]}]},
        }
    }
    async with httpx.AsyncClient(timeout=10) as client:
        delivered = await client.post(str(body["callbackUrl"]), json=event)
    return JSONResponse({"status": delivered.status_code, "event": event})
