"""The one way to reach Temporal: `connect()`, with the converter that seals every payload with
its member's key. The API connects lazily (it starts, and `/readyz` says why it is not ready,
while Temporal is down); the worker connects at once."""

from __future__ import annotations

from temporalio.client import Client

from badges.config import Settings
from badges.temporal.codec import KeyRing
from badges.temporal.converter import make_data_converter

__all__ = ["Client", "connect"]


async def connect(settings: Settings, keys: KeyRing, *, lazy: bool = False) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=make_data_converter(keys),
        lazy=lazy,
    )
