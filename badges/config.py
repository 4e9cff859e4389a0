"""The one settings object, read from the environment and passed in where it is needed."""

from __future__ import annotations

import base64
from functools import cached_property
from typing import Literal

import limits
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

WS_MAX_SIZE_MARGIN = 4 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    badges_env: Literal["dev", "test", "prod"] = Field("prod", alias="BADGES_ENV")
    database_url: str = Field(alias="DATABASE_URL")
    temporal_address: str = Field("localhost:7233", alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field("default", alias="TEMPORAL_NAMESPACE")
    # Temporal's frontend beyond one machine: mutual TLS (this process's certificate and key, PEM
    # files, and the CA that signed the server's when it is a private one), an API key (Temporal
    # Cloud), or both. Empty: plain gRPC, as the embedded dev server speaks it.
    temporal_tls_cert: str = Field("", alias="TEMPORAL_TLS_CERT")
    temporal_tls_key: str = Field("", alias="TEMPORAL_TLS_KEY")
    temporal_tls_ca: str = Field("", alias="TEMPORAL_TLS_CA")
    temporal_api_key: str = Field("", alias="TEMPORAL_API_KEY", repr=False)
    task_queue: str = Field("badges", alias="BADGES_TASK_QUEUE")
    jwt_secret: str = Field(alias="BADGES_JWT_SECRET", min_length=32)
    jwt_issuer: str = Field("badges", alias="BADGES_JWT_ISSUER")
    jwt_audience: str = Field("badges", alias="BADGES_JWT_AUDIENCE")
    # "id:base64key[,id:base64key…]": the first is the active wrapping key, the rest stay readable.
    master_keys: str = Field(alias="BADGES_MASTER_KEYS")
    # Keys the HMAC that turns a token `sub` into a lookup digest, so the DB never holds the sub.
    identity_pepper: str = Field(alias="BADGES_IDENTITY_PEPPER", min_length=16)
    # Origins of the Temporal Web UI allowed to call the codec endpoint (comma-separated).
    codec_cors_origins: str = Field("http://localhost:8233,http://127.0.0.1:8233", alias="BADGES_CODEC_CORS_ORIGINS")
    max_body_bytes: int = Field(64 * 1024, alias="BADGES_MAX_BODY_BYTES")
    # The badge catalogue loaded into the database at start-up; empty: the one shipped in the package.
    catalogue_path: str = Field("", alias="BADGES_CATALOGUE_PATH")
    # Anti-gaming at the door: events whose timestamp lies further ahead (clock skew) or further
    # back than this are refused; rates per member and per integration (the `limits` notation).
    event_max_future_seconds: int = Field(300, alias="BADGES_EVENT_MAX_FUTURE_SECONDS", ge=0)
    event_max_age_hours: int = Field(7 * 24, alias="BADGES_EVENT_MAX_AGE_HOURS", gt=0)
    # Award webhooks may go to http:// and private addresses: only for local development and tests.
    webhook_allow_private_targets: bool = Field(False, alias="BADGES_WEBHOOK_ALLOW_PRIVATE_TARGETS")
    member_event_rate: str = Field("120/minute", alias="BADGES_MEMBER_EVENT_RATE")
    integration_event_rate: str = Field("6000/minute", alias="BADGES_INTEGRATION_EVENT_RATE")
    # Plaid: the host the plaid-python client talks to (`make dev`: the sandbox bank on :8100).
    plaid_host: str = Field("http://127.0.0.1:8100", alias="PLAID_HOST")
    plaid_client_id: str = Field("sandbox-client-id", alias="PLAID_CLIENT_ID")
    plaid_secret: str = Field("sandbox-secret", alias="PLAID_SECRET")
    # TrueLayer Data API v1 (`make dev`: the local TrueLayer sandbox on :8101; the real sandbox is
    # https://auth.truelayer-sandbox.com and https://api.truelayer-sandbox.com). The redirect is the
    # client's page that receives `code` and posts it to POST /v1/me/bank/connections.
    truelayer_auth_url: str = Field("http://127.0.0.1:8101", alias="TRUELAYER_AUTH_URL")
    truelayer_api_url: str = Field("http://127.0.0.1:8101", alias="TRUELAYER_API_URL")
    truelayer_client_id: str = Field("sandbox-client-id", alias="TRUELAYER_CLIENT_ID")
    truelayer_client_secret: str = Field("sandbox-secret", alias="TRUELAYER_CLIENT_SECRET")
    truelayer_redirect_uri: str = Field("http://localhost:8000/bank/truelayer/callback", alias="TRUELAYER_REDIRECT_URI")
    # Where providers reach this API (webhooks): `{public_url}/v1/webhooks/plaid`.
    public_url: str = Field("http://localhost:8000", alias="BADGES_PUBLIC_URL")
    bank_sync_interval_seconds: float = Field(6 * 3600, alias="BADGES_BANK_SYNC_INTERVAL_SECONDS", gt=0)
    # Each process's cache of unwrapped data keys: at most this many, each used for at most this
    # long before its row is read again (the bound on a missed erasure notice, too).
    key_cache_size: int = Field(50_000, alias="BADGES_KEY_CACHE_SIZE", gt=0)
    key_cache_seconds: float = Field(120.0, alias="BADGES_KEY_CACHE_SECONDS", gt=0)
    # The worker's Prometheus metrics (`/metrics` on this port); 0: none. The API serves its own.
    worker_metrics_port: int = Field(0, alias="BADGES_WORKER_METRICS_PORT", ge=0)

    @field_validator("member_event_rate", "integration_event_rate")
    @classmethod
    def _rate_parses(cls, value: str) -> str:
        limits.parse(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _use_psycopg_driver(cls, value: str) -> str:
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("master_keys")
    @classmethod
    def _master_keys_parse(cls, value: str) -> str:
        parse_master_keys(value)
        return value

    @cached_property
    def parsed_master_keys(self) -> list[tuple[str, bytes]]:
        return parse_master_keys(self.master_keys)

    @property
    def ws_max_size(self) -> int:
        """The bound the server (uvicorn `ws_max_size`) puts on one WebSocket message: a little above
        the app's own limit, so the app's check, which closes with a reason, is the one that fires."""
        return self.max_body_bytes + WS_MAX_SIZE_MARGIN

    @property
    def libpq_url(self) -> str:
        """The database URL as libpq (psycopg without SQLAlchemy) accepts it."""
        return self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def parse_master_keys(value: str) -> list[tuple[str, bytes]]:
    keys: list[tuple[str, bytes]] = []
    for item in value.split(","):
        key_id, sep, encoded = item.strip().partition(":")
        if not sep or not key_id:
            raise ValueError("BADGES_MASTER_KEYS items must look like 'id:base64key'")
        key = base64.b64decode(encoded, validate=True)
        if len(key) != 32:
            raise ValueError(f"master key {key_id!r} must be 32 bytes (AES-256), got {len(key)}")
        keys.append((key_id, key))
    if not keys:
        raise ValueError("BADGES_MASTER_KEYS holds no key")
    return keys
