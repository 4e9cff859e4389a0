"""The one way to reach Temporal: `connect()`, with the converter that seals every payload with
its member's key. The API connects lazily (it starts, and `/readyz` says why it is not ready,
while Temporal is down); the worker connects at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from badges.config import Settings
from badges.temporal.codec import KeyRing
from badges.temporal.converter import make_data_converter

__all__ = ["Client", "connect", "connect_now"]


async def connect(settings: Settings, keys: KeyRing, *, lazy: bool = False, runtime: Runtime | None = None) -> Client:
    """`runtime`: the SDK runtime the client and its workers run on (`sdk_metrics_runtime`); the
    SDK's default one otherwise."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=make_data_converter(keys),
        tls=tls_config(settings),
        api_key=settings.temporal_api_key or None,
        lazy=lazy,
        runtime=runtime,
    )


async def connect_now(client: Client, timeout: float) -> None:
    """A lazy client's connection made now, by one health check, rather than by its first call
    (which then waits for it): raises when the server does not answer within `timeout` seconds."""
    async with asyncio.timeout(timeout):
        await client.service_client.check_health(timeout=timedelta(seconds=timeout))


def sdk_metrics_runtime(port: int, host: str = "0.0.0.0") -> Runtime:
    """An SDK runtime that serves the SDK's own metrics (workers' task slots, poll and
    schedule-to-start latencies, sticky cache, requests to the server: `temporal_*`) for Prometheus
    on `host:port`, from the SDK's core (its own thread, not the event loop)."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}")))


def tls_config(settings: Settings) -> TLSConfig | bool:
    """Mutual TLS from the certificate files the settings name; TLS with the system's roots for an
    API key alone (Temporal Cloud); plain gRPC when neither is set (the embedded dev server)."""
    if settings.temporal_tls_cert or settings.temporal_tls_key or settings.temporal_tls_ca:
        return TLSConfig(
            client_cert=_read(settings.temporal_tls_cert),
            client_private_key=_read(settings.temporal_tls_key),
            server_root_ca_cert=_read(settings.temporal_tls_ca),
        )
    return bool(settings.temporal_api_key)


def _read(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None
