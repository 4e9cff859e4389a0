"""The data converter every client and worker uses: pydantic JSON, then our encryption codec, and
a payload converter that turns what the codec refused into a failure (never a value)."""

from __future__ import annotations

import copy
import dataclasses
import functools
from typing import Any, Self

from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, PydanticPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    EncodingPayloadConverter,
    JSONPlainPayloadConverter,
    SerializationContext,
    WithSerializationContext,
)
from temporalio.exceptions import ApplicationError

from badges.temporal.codec import REFUSAL_METADATA, REFUSED_ENCODING, EncryptionCodec, KeyRing

# The `type` of the failure a refused payload becomes (a refused update's rejection, a refused
# start's workflow failure; a refused signal is dropped with it in the worker's log).
PAYLOAD_REFUSED = "PayloadRefused"


class RefusedPayloadConverter(EncodingPayloadConverter):
    """Reads what the codec refused (`REFUSED_ENCODING`) as a non-retryable `ApplicationError`.

    The SDK turns that into what each kind of input needs: a signal is dropped and logged
    ("Failed deserializing signal input ... dropping the signal"), an update is rejected, and a
    run whose start input was refused fails, so the next legitimate signal-with-start starts a
    fresh one. Never a workflow task failure: Temporal would retry that for ever."""

    @property
    def encoding(self) -> str:
        return REFUSED_ENCODING.decode()

    def to_payload(self, value: Any) -> Payload | None:
        return None  # never writes anything

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        reason = payload.metadata.get(REFUSAL_METADATA, b"refused").decode(errors="replace")
        raise ApplicationError(f"payload refused: {reason}", type=PAYLOAD_REFUSED, non_retryable=True)


@functools.lru_cache(maxsize=1024)
def shared_type_adapter(type_hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(type_hint)


class SharedAdaptersJSONConverter(PydanticJSONPlainPayloadConverter):
    """Pydantic JSON with one `TypeAdapter` per type for the whole process. The SDK makes a payload
    converter for every workflow run it caches, and `temporalio.contrib.pydantic`'s keeps its own
    adapters: a worker caching 300 runs held some 1,500 of them (objects every full garbage
    collection walks), and each new run built its adapters again (bench/RESULTS.md, *Worker
    garbage collection*)."""

    def __init__(self) -> None:
        super().__init__(max_cached_type_adapters=0)

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        hint: Any = type_hint if type_hint is not None else Any
        try:
            hash(hint)
        except TypeError:  # an unhashable hint is not cached, as the SDK's converter does
            return TypeAdapter(hint).validate_json(payload.data)
        return shared_type_adapter(hint).validate_json(payload.data)


@functools.cache
def sealed_encoding_converters() -> tuple[EncodingPayloadConverter, ...]:
    """What every `SealedPayloadConverter` delegates to, made once for the process: none of them
    holds anything of a run (the JSON one's adapters are the process's already)."""
    json = SharedAdaptersJSONConverter()
    defaults = DefaultPayloadConverter.default_encoding_payload_converters
    return (
        *(json if isinstance(converter, JSONPlainPayloadConverter) else converter for converter in defaults),
        RefusedPayloadConverter(),
    )


class SealedPayloadConverter(PydanticPayloadConverter):
    """Pydantic JSON, as `temporalio.contrib.pydantic` (its type adapters shared by the process),
    plus `RefusedPayloadConverter`.

    The SDK makes one of these for every activation of a cached run (its per-command data
    converter is a new `DataConverter`), so it is only a table of the process's converters: the
    parent's `__init__` built a JSON converter with its own pydantic-core serializer each time."""

    def __init__(self) -> None:
        CompositePayloadConverter.__init__(self, *sealed_encoding_converters())


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
        payload_converter_class=SealedPayloadConverter,
        # Failure messages and stack traces go through the codec too: nothing personal in plaintext.
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
        payload_codec=EncryptionCodec(keys),
    )
