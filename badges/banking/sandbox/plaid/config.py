"""The sandbox bank's settings, from the environment (`make dev`) or passed in (tests)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True, populate_by_name=True)

    host: str = Field("127.0.0.1", alias="BADGES_SANDBOX_HOST")
    port: int = Field(8100, alias="BADGES_SANDBOX_PORT")
    # The only credentials accepted; anything else gets Plaid's INVALID_API_KEYS.
    client_id: str = Field("sandbox-client-id", alias="PLAID_CLIENT_ID")
    secret: str = Field("sandbox-secret", alias="PLAID_SECRET")
    history_months: int = Field(12, ge=12, le=24, alias="BADGES_SANDBOX_HISTORY_MONTHS")
