"""The one bank one can link in the TrueLayer sandbox: TrueLayer's own mock provider."""

from __future__ import annotations

PROVIDER = {
    "display_name": "Mock Bank",
    "logo_uri": "https://truelayer-provider-assets.s3.amazonaws.com/global/logos/mock.svg",
    "provider_id": "mock",
}
