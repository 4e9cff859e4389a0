"""Plaid's endpoints, the subset Badges uses, answering exactly what plaid-python's models require."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks

from badges.banking.sandbox.catalogue import OTHER_CARD_SPEND, OTHER_INCOME, Category
from badges.banking.sandbox.plaid import errors, institutions, webhooks, wire
from badges.banking.sandbox.plaid.bank import Item
from badges.banking.sandbox.plaid.deps import (
    DataCall,
    ItemCall,
    ItemStateCall,
    PlaidCall,
    item_call,
    plaid_time,
    request_id,
)
from badges.banking.sandbox.plaid.schemas import (
    FireWebhook,
    InstitutionGet,
    LinkTokenCreate,
    PublicTokenExchange,
    SandboxPublicTokenCreate,
    TransactionsCreate,
    TransactionsSync,
    VerificationKeyGet,
    WithAccessToken,
    parse,
)
from badges.banking.sandbox.records import Transaction
from badges.domain.banking import primary_category

router = APIRouter()


@router.post("/link/token/create")
async def link_token_create(call: PlaidCall) -> dict[str, Any]:
    request = parse(LinkTokenCreate, call.body)
    link = call.sandbox.bank.create_link_token(request.user.client_user_id, request.webhook, request.access_token)
    return {"link_token": link.token, "expiration": plaid_time(link.expiration), "request_id": request_id()}


@router.post("/sandbox/public_token/create")
async def sandbox_public_token_create(call: PlaidCall) -> dict[str, Any]:
    request = parse(SandboxPublicTokenCreate, call.body)
    public_token = call.sandbox.bank.create_item(
        request.institution_id, request.options.override_username, request.options.webhook, request.user_id
    )
    return {"public_token": public_token, "request_id": request_id()}


@router.post("/item/public_token/exchange")
async def item_public_token_exchange(call: PlaidCall) -> dict[str, Any]:
    item = call.sandbox.bank.exchange(parse(PublicTokenExchange, call.body).public_token)
    return {"access_token": item.access_token, "item_id": item.item_id, "request_id": request_id()}


@router.post("/accounts/get")
async def accounts_get(call: DataCall) -> dict[str, Any]:
    bank = call.sandbox.bank
    with bank.lock:
        accounts = bank.ledger(call.item).accounts_plaid()
    return {"accounts": accounts, "item": _item(call.item), "request_id": request_id()}


@router.post("/item/get")
async def item_get(call: ItemStateCall) -> dict[str, Any]:
    item = call.item
    last_update = plaid_time(item.created_at)
    return {
        "item": _item(item) | {"created_at": last_update},
        "status": {
            "transactions": {"last_successful_update": last_update, "last_failed_update": None},
            "last_webhook": None,
        },
        "request_id": request_id(),
    }


@router.post("/item/remove")
async def item_remove(call: PlaidCall) -> dict[str, Any]:
    call.sandbox.bank.remove(parse(WithAccessToken, call.body).access_token)
    return {"request_id": request_id()}


@router.post("/institutions/get_by_id")
async def institutions_get_by_id(call: PlaidCall) -> dict[str, Any]:
    request = parse(InstitutionGet, call.body)
    return {"institution": institutions.to_plaid(request.institution_id), "request_id": request_id()}


@router.post("/transactions/sync")
async def transactions_sync(
    call: Annotated[ItemCall[TransactionsSync], item_call(TransactionsSync)],
) -> dict[str, Any]:
    request, bank = call.request, call.sandbox.bank
    original = bool(request.options.include_original_description)
    with bank.lock:
        ledger = bank.ledger(call.item)
        page = ledger.sync(request.cursor, request.count)
        accounts = ledger.accounts_plaid()
    return {
        "added": [wire.transaction(transaction, original) for transaction in page.added],
        "modified": [wire.transaction(transaction, original) for transaction in page.modified],
        "removed": [{"transaction_id": id_, "account_id": account_id} for id_, account_id in page.removed],
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
        "accounts": accounts,
        "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE",
        "request_id": request_id(),
    }


@router.post("/webhook_verification_key/get")
async def webhook_verification_key_get(call: PlaidCall) -> dict[str, Any]:
    signer = call.sandbox.signer
    if parse(VerificationKeyGet, call.body).key_id != signer.kid:
        raise errors.invalid_field("key_id: no verification key has this id")
    return {"key": signer.jwk(), "request_id": request_id()}


@router.post("/sandbox/item/fire_webhook")
async def sandbox_item_fire_webhook(
    call: Annotated[ItemCall[FireWebhook], item_call(FireWebhook, for_data=False)], background: BackgroundTasks
) -> dict[str, Any]:
    request, item = call.request, call.item
    body = webhooks.payload(request.webhook_code, item.item_id)
    if request.webhook_type not in (None, body["webhook_type"]):
        raise errors.sandbox_webhook_invalid(f"{request.webhook_code} is a {body['webhook_type']} webhook")
    if not item.webhook:
        raise errors.sandbox_webhook_invalid("the item has no webhook URL")
    background.add_task(webhooks.deliver, item.webhook, body, call.sandbox.signer, int(time.time()))
    return {"webhook_fired": True, "request_id": request_id()}


@router.post("/sandbox/item/reset_login")
async def sandbox_item_reset_login(call: ItemStateCall) -> dict[str, Any]:
    """The item now needs its user: data calls fail with ITEM_LOGIN_REQUIRED until update-mode Link completes."""
    with call.sandbox.bank.lock:
        call.item.login_required = True
    return {"reset_login": True, "request_id": request_id()}


@router.post("/sandbox/transactions/create")
async def sandbox_transactions_create(
    call: Annotated[ItemCall[TransactionsCreate], item_call(TransactionsCreate)],
) -> dict[str, Any]:
    """Posted transactions, on the checking account and categorised by the money's direction
    unless the sandbox's own `account_id` and `personal_finance_category` say otherwise."""
    request, bank = call.request, call.sandbox.bank
    categories = [_custom_category(custom.personal_finance_category, custom.amount) for custom in request.transactions]
    with bank.lock:
        ledger = bank.ledger(call.item)
        accounts = [
            ledger.account_id(custom.account_id) for custom in request.transactions
        ]  # all exist before any is added
        for custom, account_id, category in zip(request.transactions, accounts, categories, strict=True):
            ledger.create(
                Transaction(
                    transaction_id="",
                    account_id=account_id,
                    amount=round(custom.amount, 2),
                    date=custom.date_posted,
                    authorized_date=custom.date_transacted,
                    name=custom.description,
                    merchant_name=None,
                    category=category,
                    payment_channel="other",
                )
            )
    return {"request_id": request_id()}


def _custom_category(detailed: str | None, amount: float) -> Category:
    if detailed is None:
        return OTHER_CARD_SPEND if amount > 0 else OTHER_INCOME
    primary = primary_category(detailed)
    if primary is None:
        raise errors.invalid_field(f"personal_finance_category: {detailed!r} is not in Plaid's taxonomy")
    return Category(primary, detailed)


def _item(item: Item) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "institution_id": item.institution_id,
        "institution_name": institutions.name_of(item.institution_id),
        "webhook": item.webhook,
        "error": errors.item_login_required().body(request_id=None) if item.login_required else None,
        "available_products": [p for p in institutions.PRODUCTS if p != "transactions"],
        "billed_products": ["transactions"],
        "products": ["transactions"],
        "consented_products": ["transactions"],
        "consent_expiration_time": None,
        "update_type": "background",
    }
