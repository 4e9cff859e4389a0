"""Payload codec: AES-GCM with the data key of the member a workflow belongs to.

The key is chosen from the workflow id through `WithSerializationContext`; its id travels in the
payload's metadata. Bound to a workflow, the codec also opens only what that workflow's owner's
key sealed: anything else (plain JSON sent straight to Temporal's frontend, another member's
key, an altered ciphertext) is refused, so it never reaches a workflow as an argument.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from cryptography.exceptions import InvalidTag
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec, SerializationContext, WithSerializationContext

from badges.domain.identity import SERVICE_OWNER, key_owner_for_workflow

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
# What a refused payload becomes: no payload converter but ours (`RefusedPayloadConverter`) reads
# this encoding, and that one raises, so the SDK drops a refused signal, rejects a refused update
# and fails a run started with refused input (never retrying a workflow task on it for ever).
REFUSED_ENCODING = b"binary/refused"
REFUSAL_METADATA = "refusal"

log = logging.getLogger("badges.codec")


class SealingKey(Protocol):
    """One member's (or the service's) data key, as the codec uses it."""

    @property
    def key_id(self) -> str: ...

    @property
    def owner(self) -> str: ...

    def encrypt(self, plaintext: bytes) -> bytes: ...

    def decrypt(self, sealed: bytes) -> bytes: ...


class KeyRing(Protocol):
    """Where the codec finds keys: `badges.db.keys.KeyStore` (a protocol, so this plumbing does not
    depend on the database layer)."""

    async def live_key(self, owner: str, *, create: bool = False) -> SealingKey: ...

    async def key_by_id(self, key_id: str) -> SealingKey: ...

    async def readable_key(self, key_id: str) -> SealingKey | None:
        """The key, or None when there is no such key or it was destroyed; raises only when it
        cannot tell (the database unreachable, a master key not configured)."""
        ...


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """Unbound (no workflow), it opens any payload with the key its metadata names and passes
    plain ones through: the codec endpoint and the compliance tools use it so. Bound to a workflow
    (`with_context`, as the SDK binds it for every payload of a workflow, its activities and the
    clients that call it), it opens only payloads its owner's key sealed."""

    def __init__(self, keys: KeyRing, owner: str = SERVICE_OWNER, workflow_id: str | None = None) -> None:
        self._keys = keys
        self.owner = owner
        self.workflow_id = workflow_id
        self.bound = workflow_id is not None

    def with_context(self, context: SerializationContext) -> EncryptionCodec:
        workflow_id = getattr(context, "workflow_id", None) or ""
        return EncryptionCodec(self._keys, key_owner_for_workflow(workflow_id), workflow_id)

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
        if self.bound:
            return [await self._open_own(payload) for payload in payloads]
        decoded: list[Payload] = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            key = await self._keys.key_by_id(payload.metadata[KEY_ID_METADATA].decode())
            decoded.append(Payload.FromString(key.decrypt(payload.data)))
        return decoded

    async def _open_own(self, payload: Payload) -> Payload:
        """The payload opened, if this workflow's owner's key sealed it; else a refusal. Nothing
        about a refused payload raises here: an exception would fail the workflow task that
        carries it, and Temporal would retry that task, with the payload in it, for ever."""
        if payload.metadata.get("encoding") != ENCODING:
            return self._refuse("not sealed")
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        key = await self._keys.readable_key(key_id)
        if key is None:
            return self._refuse("sealed with a key that does not exist or was destroyed")
        if key.owner != self.owner:
            return self._refuse("sealed with another owner's key")
        try:
            return Payload.FromString(key.decrypt(payload.data))
        except (InvalidTag, ValueError, DecodeError):  # altered or truncated
            return self._refuse("does not open with the key it names")

    def _refuse(self, reason: str) -> Payload:
        log.warning("refused a payload for workflow %s: %s", self.workflow_id, reason)
        return Payload(metadata={"encoding": REFUSED_ENCODING, REFUSAL_METADATA: reason.encode()})
