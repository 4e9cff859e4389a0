"""The dependencies Yodlee sandbox endpoints start with: the bank, the API version header, the
caller's user (from its bearer token), the provider account a path or control names.

Each raises Yodlee's error when its guard fails, so routes hold only what they answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from badges.banking.sandbox.yodlee.bank import Bank, ProviderAccount
from badges.banking.sandbox.yodlee.errors import YodleeError


def _bank(request: Request) -> Bank:
    bank: Bank = request.app.state.bank
    return bank


SandboxBank = Annotated[Bank, Depends(_bank)]


def api_version(api_version: Annotated[str | None, Header(alias="Api-Version")] = None) -> None:
    """Every Yodlee call names the API version; this sandbox speaks 1.1."""
    if api_version != "1.1":
        raise YodleeError(400, "Y800", "Invalid value for Api-Version: 1.1 is required.")


def _user(bank: SandboxBank, authorization: Annotated[str | None, Header()] = None) -> str:
    """The login name of the live token the caller bears."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    login_name = bank.login_of(token) if token else None
    if login_name is None:
        raise YodleeError(401, "Y008", "Invalid token in authorization header.")
    return login_name


User = Annotated[str, Depends(_user)]


def _owned(bank: SandboxBank, user: User, provider_account_id: int) -> ProviderAccount:
    """The caller's provider account `provider_account_id` (another user's is not found)."""
    linked = bank.provider_accounts.get(provider_account_id)
    if linked is None or linked.login_name != user:
        raise YodleeError(404, "Y807", "Resource not found.")
    return linked


OwnedProviderAccount = Annotated[ProviderAccount, Depends(_owned)]


def named_provider_account(bank: SandboxBank, provider_account_id: int) -> ProviderAccount:
    """The provider account a sandbox control names (no token needed)."""
    linked = bank.provider_accounts.get(provider_account_id)
    if linked is None:
        raise YodleeError(404, "Y807", "No such provider account.")
    return linked


NamedProviderAccount = Annotated[ProviderAccount, Depends(named_provider_account)]
