"""Bank data providers behind one interface (`provider.BankProvider`), and the sandbox banks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from badges.banking.plaid import PlaidProvider
from badges.banking.provider import BankProvider
from badges.banking.truelayer import TrueLayerProvider

if TYPE_CHECKING:
    from badges.config import Settings


def make_providers(settings: Settings) -> dict[str, BankProvider]:
    """The configured providers by name."""
    return {
        "plaid": PlaidProvider(settings.plaid_host, settings.plaid_client_id, settings.plaid_secret),
        "truelayer": TrueLayerProvider(
            auth_url=settings.truelayer_auth_url,
            api_url=settings.truelayer_api_url,
            client_id=settings.truelayer_client_id,
            client_secret=settings.truelayer_client_secret,
            redirect_uri=settings.truelayer_redirect_uri,
        ),
    }
