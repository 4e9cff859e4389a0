"""Every sandbox endpoint answers what the real plaid-python models accept, with every required field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from plaid.exceptions import ApiValueError
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.accounts_get_response import AccountsGetResponse
from plaid.model.country_code import CountryCode
from plaid.model.custom_sandbox_transaction import CustomSandboxTransaction
from plaid.model.institutions_get_by_id_request import InstitutionsGetByIdRequest
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.item_remove_request import ItemRemoveRequest
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.products import Products
from plaid.model.sandbox_item_fire_webhook_request import SandboxItemFireWebhookRequest
from plaid.model.sandbox_item_reset_login_request import SandboxItemResetLoginRequest
from plaid.model.sandbox_transactions_create_request import SandboxTransactionsCreateRequest
from plaid.model.transactions_sync_request import TransactionsSyncRequest
from plaid.model.transactions_sync_request_options import TransactionsSyncRequestOptions
from plaid.model.transactions_sync_response import TransactionsSyncResponse

from tests.sandbox.conftest import INSTITUTION, TODAY, Sandbox, call
from tests.sandbox.contract import assert_complete, deserialize

MONEY_IN = {"INCOME", "TRANSFER_IN", "ENTERTAINMENT"}  # ENTERTAINMENT: gambling wins


def link_token_request(**fields: Any) -> LinkTokenCreateRequest:
    return LinkTokenCreateRequest(
        client_name="Badges",
        language="en",
        country_codes=[CountryCode("US")],
        user=LinkTokenCreateRequestUser(client_user_id="member-1"),
        **fields,
    )


async def test_every_endpoint_answers_complete_plaid_models(sandbox: Sandbox) -> None:
    api = sandbox.api
    token = await sandbox.link("user_good", webhook="http://127.0.0.1:9/unreachable")
    responses = [
        await call(api.link_token_create, link_token_request(products=[Products("transactions")])),
        await call(api.link_token_create, link_token_request(access_token=token)),
        await call(api.accounts_get, AccountsGetRequest(access_token=token)),
        await call(api.item_get, ItemGetRequest(access_token=token)),
        await call(
            api.institutions_get_by_id,
            InstitutionsGetByIdRequest(institution_id=INSTITUTION, country_codes=[CountryCode("US")]),
        ),
        await call(
            api.transactions_sync,
            TransactionsSyncRequest(
                access_token=token, count=500, options=TransactionsSyncRequestOptions(include_original_description=True)
            ),
        ),
        await call(
            api.sandbox_transactions_create,
            SandboxTransactionsCreateRequest(
                access_token=token,
                transactions=[
                    CustomSandboxTransaction(
                        date_transacted=TODAY.date(), date_posted=TODAY.date(), amount=12.5, description="CORNER SHOP"
                    )
                ],
            ),
        ),
        await call(
            api.sandbox_item_fire_webhook,
            SandboxItemFireWebhookRequest(access_token=token, webhook_code="SYNC_UPDATES_AVAILABLE"),
        ),
        await call(api.sandbox_item_reset_login, SandboxItemResetLoginRequest(access_token=token)),
        await call(api.item_get, ItemGetRequest(access_token=token)),  # now carrying the item's error
        await call(api.item_remove, ItemRemoveRequest(access_token=token)),
    ]
    for response in responses:
        assert_complete(response, type(response).__name__)
        assert response.request_id


async def test_transactions_carry_plaid_conventions(sandbox: Sandbox) -> None:
    # A fixed user (the sandbox's clock is fixed too): the history is seeded by both, so its first
    # page surely has a refund. Histories of random users had none in about one run in twenty.
    token = await sandbox.link("user_good", user_id="refunding-member")
    page = await call(sandbox.api.transactions_sync, TransactionsSyncRequest(access_token=token, count=500))
    account_ids = {account.account_id for account in page.accounts}
    assert {str(account.subtype) for account in page.accounts} == {"checking", "savings"}
    for transaction in page.added:
        assert transaction.account_id in account_ids
        category = transaction.personal_finance_category
        assert category.detailed.startswith(category.primary + "_")
        assert str(category.version) == "v2"
        assert str(transaction.iso_currency_code) == "USD"
        if category.primary == "INCOME":
            assert transaction.amount < 0, "money in is negative in Plaid's convention"
        if category.primary == "FOOD_AND_DRINK":
            assert transaction.merchant_name
    assert any(t.personal_finance_category.detailed == "INCOME_WAGES" for t in page.added)
    refunds = [t for t in page.added if t.amount < 0 and t.personal_finance_category.primary not in MONEY_IN]
    assert refunds, "a year of card spend has some refunds (money in, under the merchant's category)"


async def raw(sandbox: Sandbox, path: str, **body: Any) -> dict[str, Any]:
    return await sandbox.custom(path, **body)


@pytest.mark.parametrize(
    ("model", "path", "drop"),
    [
        (TransactionsSyncResponse, "/transactions/sync", ("next_cursor",)),
        (TransactionsSyncResponse, "/transactions/sync", ("added", 0, "account_id")),
        (TransactionsSyncResponse, "/transactions/sync", ("added", 0, "payment_channel")),
        (TransactionsSyncResponse, "/transactions/sync", ("added", 0, "personal_finance_category", "detailed")),
        (TransactionsSyncResponse, "/transactions/sync", ("accounts", 0, "balances", "available")),
        (AccountsGetResponse, "/accounts/get", ("item", "update_type")),
        (AccountsGetResponse, "/accounts/get", ("accounts", 0, "mask")),
    ],
)
async def test_plaid_python_rejects_a_missing_required_field(
    sandbox: Sandbox, model: type[Any], path: str, drop: tuple[Any, ...]
) -> None:
    """The guard the contract tests rely on: drop one required field and the real client refuses the body."""
    token = await sandbox.link("user_good")
    body = await raw(sandbox, path, access_token=token)
    deserialize(body, model)  # the body as served is accepted
    broken = copy.deepcopy(body)
    holder: Any = broken
    for key in drop[:-1]:
        holder = holder[key]
    del holder[drop[-1]]
    with pytest.raises((TypeError, ApiValueError), match=f"missing 1 required positional argument: '{drop[-1]}'"):
        deserialize(broken, model)
