"""Bank data providers behind one interface (`provider.BankProvider`), and the sandbox bank."""

from __future__ import annotations

from badges.banking.plaid import PlaidProvider
from badges.banking.provider import BankProvider


def make_providers(*, plaid_host: str, plaid_client_id: str, plaid_secret: str) -> dict[str, BankProvider]:
    """The configured providers by name."""
    return {"plaid": PlaidProvider(plaid_host, plaid_client_id, plaid_secret)}
