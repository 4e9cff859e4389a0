"""Fixtures for the sandbox contract tests: the sandbox on a free port, and the real plaid-python client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import plaid
import pytest
from plaid.api.plaid_api import PlaidApi
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.products import Products
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest
from plaid.model.sandbox_public_token_create_request_options import SandboxPublicTokenCreateRequestOptions
from plaid.model.transactions_sync_request import TransactionsSyncRequest

from badges.banking.sandbox import SandboxSettings, create_sandbox_app
from tests.support import serving

TODAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CLIENT_ID = "sandbox-client-id"
SECRET = "sandbox-secret"
INSTITUTION = "ins_109508"
T = TypeVar("T")


def plaid_api(url: str, client_id: str = CLIENT_ID, secret: str = SECRET) -> PlaidApi:
    configuration = plaid.Configuration(host=url, api_key={"clientId": client_id, "secret": secret})
    return PlaidApi(plaid.ApiClient(configuration))


async def call(method: Callable[..., T], request: Any) -> T:
    """plaid-python is synchronous: each call runs in a thread so the in-process server keeps serving."""
    return await asyncio.to_thread(method, request)


@dataclass
class Sandbox:
    url: str
    api: PlaidApi
    http: httpx.AsyncClient  # for the sandbox's own (non-Plaid) endpoints

    async def link(self, username: str = "user_good", *, webhook: str | None = None, user_id: str | None = None) -> str:
        """A new item for `username`; answers its access token."""
        options: dict[str, Any] = {"override_username": username}
        if webhook:
            options["webhook"] = webhook
        fields: dict[str, Any] = {
            "institution_id": INSTITUTION,
            "initial_products": [Products("transactions")],
            "options": SandboxPublicTokenCreateRequestOptions(**options),
        }
        if user_id:
            fields["user_id"] = user_id
        created = await call(self.api.sandbox_public_token_create, SandboxPublicTokenCreateRequest(**fields))
        exchanged = await call(
            self.api.item_public_token_exchange, ItemPublicTokenExchangeRequest(public_token=created.public_token)
        )
        return str(exchanged.access_token)

    async def skip_history(self, token: str) -> tuple[str, list[dict[str, Any]]]:
        """Syncs the generated history without building plaid-python models (slow for thousands of
        transactions): answers the cursor after it and the raw transactions."""
        cursor, added = "", []
        while True:
            request = TransactionsSyncRequest(access_token=token, count=500)
            if cursor:
                request.cursor = cursor
            raw = await call(lambda r: self.api.transactions_sync(r, _preload_content=False), request)
            page = json.loads(raw.data)
            added += page["added"]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return cursor, added

    async def custom(self, path: str, **body: Any) -> dict[str, Any]:
        response = await self.http.post(path, json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    app = create_sandbox_app(SandboxSettings(), clock=lambda: TODAY)
    async with serving(app) as url:
        headers = {"PLAID-CLIENT-ID": CLIENT_ID, "PLAID-SECRET": SECRET}
        async with httpx.AsyncClient(base_url=url, headers=headers) as http:
            yield Sandbox(url, plaid_api(url), http)


@pytest.fixture(autouse=True)
async def no_faults_left(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "sandbox" in request.fixturenames:
        sandbox: Sandbox = request.getfixturevalue("sandbox")
        await sandbox.http.delete("/sandbox/faults")
