"""The data converter every client and worker uses: pydantic JSON, then our encryption codec."""

from __future__ import annotations

import copy
import dataclasses
from typing import Self

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    SerializationContext,
    WithSerializationContext,
)

from badges.temporal.codec import EncryptionCodec, KeyRing


@dataclasses.dataclass(frozen=True)
class EncryptedDataConverter(DataConverter):
    """`DataConverter` whose per-payload context switch is a shallow copy.

    The SDK asks for a converter bound to each payload's workflow (that is how the codec picks
    the member's key). The base class clones itself with `dataclasses.replace`, which runs
    `__post_init__` and builds a new payload converter and failure converter every time: about
    15 % of the worker's CPU on the real-time path. Only the codec depends on the context here,
    so a copy that swaps the context-aware parts is equivalent.
    """

    def with_context(self, context: SerializationContext) -> Self:
        clone = copy.copy(self)
        changed = False
        for name in ("payload_converter", "payload_codec", "failure_converter", "external_storage"):
            part = getattr(self, name)
            if isinstance(part, WithSerializationContext):
                bound = part.with_context(context)
                if bound is not part:
                    object.__setattr__(clone, name, bound)
                    changed = True
        return clone if changed else self


def make_data_converter(keys: KeyRing) -> DataConverter:
    return EncryptedDataConverter(
        payload_converter_class=pydantic_data_converter.payload_converter_class,
        # Failure messages and stack traces go through the codec too: nothing personal in plaintext.
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
        payload_codec=EncryptionCodec(keys),
    )
