"""Bank data providers behind one interface (`provider.BankProvider`), and the sandbox banks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from badges.banking.plaid import PlaidProvider
from badges.banking.provider import BankProvider
from badges.banking.truelayer import TrueLayerProvider
from badges.banking.yodlee import YodleeProvider

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
        "yodlee": YodleeProvider(
            api_url=settings.yodlee_api_url,
            fastlink_url=settings.yodlee_fastlink_url,
            client_id=settings.yodlee_client_id,
            secret=settings.yodlee_secret,
            admin_login_name=settings.yodlee_admin_login_name,
            redirect_uri=settings.yodlee_redirect_uri,
        ),
    }
