"""Payload codec: AES-GCM with the data key of the member a workflow belongs to.

The key is chosen from the workflow id through `WithSerializationContext`; its id travels in the
payload's metadata, so decoding never depends on context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec, SerializationContext, WithSerializationContext

from badges.domain.identity import SERVICE_OWNER, key_owner_for_workflow

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"


class SealingKey(Protocol):
    """One member's (or the service's) data key, as the codec uses it."""

    @property
    def key_id(self) -> str: ...

    def encrypt(self, plaintext: bytes) -> bytes: ...

    def decrypt(self, sealed: bytes) -> bytes: ...


class KeyRing(Protocol):
    """Where the codec finds keys: `badges.db.keys.KeyStore` (a protocol, so this plumbing does not
    depend on the database layer)."""

    async def live_key(self, owner: str, *, create: bool = False) -> SealingKey: ...

    async def key_by_id(self, key_id: str) -> SealingKey: ...


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    def __init__(self, keys: KeyRing, owner: str = SERVICE_OWNER) -> None:
        self._keys = keys
        self.owner = owner

    def with_context(self, context: SerializationContext) -> EncryptionCodec:
        workflow_id = getattr(context, "workflow_id", None)
        return EncryptionCodec(self._keys, key_owner_for_workflow(workflow_id))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if not payloads:
            return []
        key = await self._keys.live_key(self.owner, create=self.owner == SERVICE_OWNER)
        return [
            Payload(
                metadata={"encoding": ENCODING, KEY_ID_METADATA: key.key_id.encode()},
                data=key.encrypt(payload.SerializeToString()),
            )
            for payload in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded: list[Payload] = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            key = await self._keys.key_by_id(payload.metadata[KEY_ID_METADATA].decode())
            decoded.append(Payload.FromString(key.decrypt(payload.data)))
        return decoded
