"""The dependencies every Plaid sandbox endpoint starts with: credentials checked, body read, faults applied,
and for calls about one item, the item its access token names.

Every call must carry the configured client id and secret, in the body (`client_id`, `secret`) or
in the headers plaid-python sends (`PLAID-CLIENT-ID`, `PLAID-SECRET`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Request

from badges.banking.sandbox.plaid import errors
from badges.banking.sandbox.plaid.bank import Bank, Item
from badges.banking.sandbox.plaid.config import SandboxSettings
from badges.banking.sandbox.plaid.faults import Faults
from badges.banking.sandbox.plaid.schemas import WithAccessToken, parse
from badges.banking.sandbox.plaid.webhooks import WebhookSigner


@dataclass(frozen=True)
class Sandbox:
    settings: SandboxSettings
    bank: Bank
    faults: Faults
    signer: WebhookSigner


@dataclass(frozen=True)
class Call:
    """An authenticated call: the sandbox it reached and its JSON body."""

    sandbox: Sandbox
    body: dict[str, Any]


def request_id() -> str:
    return secrets.token_urlsafe(11)


async def _authenticated(request: Request) -> Call:
    sandbox: Sandbox = request.app.state.sandbox
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        raise errors.invalid_field("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise errors.invalid_field("the request body must be a JSON object")
    client_id = body.get("client_id") or request.headers.get("PLAID-CLIENT-ID")
    secret = body.get("secret") or request.headers.get("PLAID-SECRET")
    settings = sandbox.settings
    if not (
        isinstance(client_id, str)
        and isinstance(secret, str)
        and secrets.compare_digest(client_id.encode(), settings.client_id.encode())
        and secrets.compare_digest(secret.encode(), settings.secret.encode())
    ):
        raise errors.invalid_api_keys()
    return Call(sandbox, body)


async def _faulty(request: Request, call: Annotated[Call, Depends(_authenticated)]) -> Call:
    """Applies the first armed fault that matches this call, if any."""
    access_token = call.body.get("access_token")
    access_token = access_token if isinstance(access_token, str) else None
    item_id = call.sandbox.bank.item_id_of(access_token)
    fault = call.sandbox.faults.take(request.url.path, access_token, item_id)
    if fault is not None:
        error = fault.error(request.url.path)
        if error is not None:
            raise error
        await asyncio.sleep(fault.delay_ms / 1000)
    return call


AuthenticatedCall = Annotated[Call, Depends(_authenticated)]
PlaidCall = Annotated[Call, Depends(_faulty)]

M = TypeVar("M", bound=WithAccessToken)


@dataclass(frozen=True)
class ItemCall(Generic[M]):
    """A call about one item: its body read as `M`, and the item its access token names."""

    sandbox: Sandbox
    request: M
    item: Item


def item_call(model: type[M], *, for_data: bool = True) -> Any:
    """A dependency: the body parsed as `model` (Plaid's MISSING_FIELDS or INVALID_FIELD), then the item
    behind its access token (INVALID_ACCESS_TOKEN; with `for_data`, ITEM_LOGIN_REQUIRED while its user
    must log in again), in that order, after credentials and faults.
    """

    async def item_of(call: PlaidCall) -> ItemCall[M]:
        request = parse(model, call.body)
        return ItemCall(call.sandbox, request, call.sandbox.bank.item(request.access_token, for_data=for_data))

    return Depends(item_of)


# The item's data (fails while its user must log in again), or the item whatever its state.
DataCall = Annotated[ItemCall[WithAccessToken], item_call(WithAccessToken)]
ItemStateCall = Annotated[ItemCall[WithAccessToken], item_call(WithAccessToken, for_data=False)]


def plaid_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
