"""The sandbox's own endpoints (not Plaid's): finish Link, move transactions along, inject faults.

They take the same credentials as Plaid's endpoints and answer Plaid-style errors. None of them
fires a webhook; tests and `make dev` fire SYNC_UPDATES_AVAILABLE with `/sandbox/item/fire_webhook`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from badges.banking.sandbox.catalogue import OTHER_CARD_SPEND, OTHER_INCOME
from badges.banking.sandbox.plaid.deps import AuthenticatedCall, ItemCall, PlaidCall, item_call, request_id
from badges.banking.sandbox.plaid.faults import Fault
from badges.banking.sandbox.plaid.schemas import (
    LinkComplete,
    PendingCreate,
    PostPending,
    TransactionModify,
    TransactionsRemove,
    parse,
)
from badges.banking.sandbox.records import Transaction

router = APIRouter(prefix="/sandbox")


@router.post("/link/complete")
async def link_complete(call: PlaidCall) -> dict[str, Any]:
    """Stands in for the user finishing Link with this link token: a public token, as Link's onSuccess gives.

    In update mode (the link token was made with an `access_token`) the item's login is repaired and
    the public token exchanges for the same item and access token.
    """
    request = parse(LinkComplete, call.body)
    public_token = call.sandbox.bank.complete_link(request.link_token, request.institution_id, request.username)
    return {"public_token": public_token, "request_id": request_id()}


@router.post("/transactions/pending")
async def transactions_pending(
    call: Annotated[ItemCall[PendingCreate], item_call(PendingCreate)],
) -> dict[str, Any]:
    """New pending card transactions, authorised on `date_transacted` (default: today)."""
    request, bank = call.request, call.sandbox.bank
    today = bank.clock().date()
    with bank.lock:
        ledger = bank.ledger(call.item)
        created = [
            ledger.create(
                Transaction(
                    transaction_id="",
                    account_id=ledger.account_id(pending.account_id),
                    amount=round(pending.amount, 2),
                    date=pending.date_transacted or today,
                    authorized_date=pending.date_transacted or today,
                    name=pending.description,
                    merchant_name=pending.merchant_name,
                    category=OTHER_CARD_SPEND if pending.amount > 0 else OTHER_INCOME,
                    payment_channel="in store",
                    pending=True,
                )
            )
            for pending in request.transactions
        ]
    return {"transaction_ids": [transaction.transaction_id for transaction in created], "request_id": request_id()}


@router.post("/transactions/post")
async def transactions_post(call: Annotated[ItemCall[PostPending], item_call(PostPending)]) -> dict[str, Any]:
    """Posts pending transactions (all of them unless `transaction_ids` says which) as Plaid does:
    each pending one is removed and a new posted one, dated today, is added with
    `pending_transaction_id` pointing at it. Answers `posted`: pending id → posted id.
    """
    request, bank = call.request, call.sandbox.bank
    today = bank.clock().date()
    with bank.lock:
        ledger = bank.ledger(call.item)
        ids = request.transaction_ids
        if ids is None:
            ids = [transaction.transaction_id for transaction in ledger.transactions() if transaction.pending]
        for id_ in ids:
            ledger.pending(id_)  # all must be pending before any posts
        posted = {id_: ledger.post(id_, today, request.amounts.get(id_)).transaction_id for id_ in ids}
    return {"posted": posted, "request_id": request_id()}


@router.post("/transactions/modify")
async def transactions_modify(
    call: Annotated[ItemCall[TransactionModify], item_call(TransactionModify)],
) -> dict[str, Any]:
    """Changes a transaction's amount or name in place: it comes back under `modified`."""
    request, bank = call.request, call.sandbox.bank
    changes: dict[str, Any] = {}
    if request.amount is not None:
        changes["amount"] = round(request.amount, 2)
    if request.name is not None:
        changes["name"] = request.name
    with bank.lock:
        bank.ledger(call.item).modify(request.transaction_id, **changes)
    return {"request_id": request_id()}


@router.post("/transactions/remove")
async def transactions_remove(
    call: Annotated[ItemCall[TransactionsRemove], item_call(TransactionsRemove)],
) -> dict[str, Any]:
    """Removes transactions (a reversed charge, say): they come back under `removed`."""
    request, bank = call.request, call.sandbox.bank
    with bank.lock:
        ledger = bank.ledger(call.item)
        ids = list(dict.fromkeys(request.transaction_ids))
        for id_ in ids:
            ledger.get(id_)  # all must exist before any goes
        for id_ in ids:
            ledger.remove(id_)
    return {"request_id": request_id()}


@router.post("/faults")
async def faults_arm(call: AuthenticatedCall) -> dict[str, Any]:
    """Arms a fault (see `faults.Fault` for the fields)."""
    call.sandbox.faults.arm(parse(Fault, call.body))
    return {"request_id": request_id()}


@router.get("/faults")
async def faults_armed(call: AuthenticatedCall) -> dict[str, Any]:
    """The faults still armed, oldest first, with the calls each has left: a test waits for them to be used up."""
    return {
        "faults": [fault.model_dump(mode="json") for fault in call.sandbox.faults.armed()],
        "request_id": request_id(),
    }


@router.delete("/faults")
async def faults_clear(call: AuthenticatedCall) -> dict[str, Any]:
    return {"cleared": call.sandbox.faults.clear(), "request_id": request_id()}
