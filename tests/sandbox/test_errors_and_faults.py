"""Plaid's errors as the sandbox gives them: bad keys, bad tokens, a login to repair, and each injected fault."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from plaid.exceptions import ApiException
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.country_code import CountryCode
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.item_remove_request import ItemRemoveRequest
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.sandbox_item_reset_login_request import SandboxItemResetLoginRequest
from plaid.model.transactions_sync_request import TransactionsSyncRequest

from tests.sandbox.conftest import Sandbox, call, plaid_api

ERROR_FIELDS = {"error_type", "error_code", "error_message", "display_message", "request_id"}


async def plaid_failure(method: Any, request: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as raised:
        await call(method, request)
    body: dict[str, Any] = json.loads(raised.value.body)
    assert body.keys() >= ERROR_FIELDS
    return int(raised.value.status), body


def kind(body: dict[str, Any]) -> tuple[str, str]:
    return body["error_type"], body["error_code"]


async def test_wrong_credentials_are_invalid_api_keys(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    for api in (plaid_api(sandbox.url, secret="wrong"), plaid_api(sandbox.url, client_id="someone-else")):
        status, body = await plaid_failure(api.accounts_get, AccountsGetRequest(access_token=token))
        assert (status, kind(body)) == (400, ("INVALID_INPUT", "INVALID_API_KEYS"))


async def test_an_unknown_or_removed_access_token_is_invalid(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    await call(sandbox.api.item_remove, ItemRemoveRequest(access_token=token))
    for unknown in (token, "access-sandbox-00000000-0000-0000-0000-000000000000"):
        status, body = await plaid_failure(sandbox.api.accounts_get, AccountsGetRequest(access_token=unknown))
        assert (status, kind(body)) == (400, ("INVALID_INPUT", "INVALID_ACCESS_TOKEN"))


async def test_a_public_token_is_used_once(sandbox: Sandbox) -> None:
    link = await sandbox.custom("/sandbox/link/complete", link_token=await link_token(sandbox))
    exchange = ItemPublicTokenExchangeRequest(public_token=link["public_token"])
    await call(sandbox.api.item_public_token_exchange, exchange)
    status, body = await plaid_failure(sandbox.api.item_public_token_exchange, exchange)
    assert (status, kind(body)) == (400, ("INVALID_INPUT", "INVALID_PUBLIC_TOKEN"))


async def link_token(sandbox: Sandbox, **fields: Any) -> str:
    request = LinkTokenCreateRequest(
        client_name="Badges",
        language="en",
        country_codes=[CountryCode("US")],
        user=LinkTokenCreateRequestUser(client_user_id="member-7"),
        **fields,
    )
    return str((await call(sandbox.api.link_token_create, request)).link_token)


async def test_link_token_flow_keeps_the_webhook(sandbox: Sandbox) -> None:
    hook = "http://127.0.0.1:9/hooks/plaid"
    completed = await sandbox.custom(
        "/sandbox/link/complete", link_token=await link_token(sandbox, webhook=hook), username="user_saver"
    )
    exchanged = await call(
        sandbox.api.item_public_token_exchange, ItemPublicTokenExchangeRequest(public_token=completed["public_token"])
    )
    item = (await call(sandbox.api.item_get, ItemGetRequest(access_token=exchanged.access_token))).item
    assert (item.item_id, item.webhook, item.error) == (exchanged.item_id, hook, None)


async def test_login_required_until_update_mode_link_completes(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    await call(sandbox.api.sandbox_item_reset_login, SandboxItemResetLoginRequest(access_token=token))
    for method, request in (
        (sandbox.api.accounts_get, AccountsGetRequest(access_token=token)),
        (sandbox.api.transactions_sync, TransactionsSyncRequest(access_token=token)),
    ):
        status, body = await plaid_failure(method, request)
        assert (status, kind(body)) == (400, ("ITEM_ERROR", "ITEM_LOGIN_REQUIRED"))
    item = (await call(sandbox.api.item_get, ItemGetRequest(access_token=token))).item
    assert item.error.error_code == "ITEM_LOGIN_REQUIRED"

    completed = await sandbox.custom("/sandbox/link/complete", link_token=await link_token(sandbox, access_token=token))
    exchanged = await call(
        sandbox.api.item_public_token_exchange, ItemPublicTokenExchangeRequest(public_token=completed["public_token"])
    )
    assert (exchanged.access_token, exchanged.item_id) == (token, item.item_id)
    accounts = await call(sandbox.api.accounts_get, AccountsGetRequest(access_token=token))
    assert accounts.item.error is None and len(accounts.accounts) == 2


async def arm(sandbox: Sandbox, **fault: Any) -> None:
    await sandbox.custom("/sandbox/faults", **fault)


async def test_rate_limit_fault_hits_the_next_calls_for_that_item_only(sandbox: Sandbox) -> None:
    token, other = await sandbox.link(), await sandbox.link()
    await arm(sandbox, endpoint="/transactions/sync", kind="rate_limit", count=2, access_token=token)
    request = TransactionsSyncRequest(access_token=token, count=1)
    assert (await call(sandbox.api.transactions_sync, TransactionsSyncRequest(access_token=other, count=1))).added
    for _ in range(2):
        status, body = await plaid_failure(sandbox.api.transactions_sync, request)
        assert (status, kind(body)) == (429, ("RATE_LIMIT_EXCEEDED", "TRANSACTIONS_SYNC_LIMIT"))
    assert (await call(sandbox.api.transactions_sync, request)).added


async def test_server_error_fault(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    await arm(sandbox, endpoint="/accounts/get", kind="server_error")
    status, body = await plaid_failure(sandbox.api.accounts_get, AccountsGetRequest(access_token=token))
    assert (status, kind(body)) == (500, ("API_ERROR", "INTERNAL_SERVER_ERROR"))
    assert await call(sandbox.api.accounts_get, AccountsGetRequest(access_token=token))


async def test_slow_fault_delays_then_answers(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    await arm(sandbox, endpoint="*", kind="slow", delay_ms=400, access_token=token)
    started = time.monotonic()
    assert await call(sandbox.api.accounts_get, AccountsGetRequest(access_token=token))
    assert time.monotonic() - started >= 0.4


async def test_item_login_required_fault_is_transient(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    await arm(sandbox, endpoint="/transactions/sync", kind="item_login_required")
    request = TransactionsSyncRequest(access_token=token, count=1)
    status, body = await plaid_failure(sandbox.api.transactions_sync, request)
    assert (status, kind(body)) == (400, ("ITEM_ERROR", "ITEM_LOGIN_REQUIRED"))
    assert (await call(sandbox.api.transactions_sync, request)).added


async def test_armed_faults_are_listed_with_the_calls_they_have_left(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    await arm(sandbox, endpoint="/accounts/get", kind="server_error", count=2)
    await arm(sandbox, endpoint="/transactions/sync", kind="slow", delay_ms=10, count=None)

    async def armed() -> list[tuple[str, str, int | None]]:
        response = await sandbox.http.get("/sandbox/faults")
        assert response.status_code == 200, response.text
        return [(f["endpoint"], f["kind"], f["count"]) for f in response.json()["faults"]]

    assert await armed() == [("/accounts/get", "server_error", 2), ("/transactions/sync", "slow", None)]
    await plaid_failure(sandbox.api.accounts_get, AccountsGetRequest(access_token=token))
    assert await armed() == [("/accounts/get", "server_error", 1), ("/transactions/sync", "slow", None)]
    await plaid_failure(sandbox.api.accounts_get, AccountsGetRequest(access_token=token))
    assert await armed() == [("/transactions/sync", "slow", None)]


async def test_faults_until_cleared(sandbox: Sandbox) -> None:
    token = await sandbox.link()
    await arm(sandbox, endpoint="/accounts/get", kind="server_error", count=None)
    for _ in range(3):
        status, _ = await plaid_failure(sandbox.api.accounts_get, AccountsGetRequest(access_token=token))
        assert status == 500
    cleared = await sandbox.http.delete("/sandbox/faults")
    assert cleared.json()["cleared"] == 1
    assert await call(sandbox.api.accounts_get, AccountsGetRequest(access_token=token))
