"""The payload codec against real PostgreSQL: per-member keys picked from the workflow id."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, func, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext
from temporalio.exceptions import ApplicationError

from badges.config import Settings
from badges.db.keys import DataKey, KeyStore, KeyUnavailableError, MasterKeys
from badges.domain.identity import SERVICE_OWNER, user_badges_workflow_id
from badges.temporal.codec import ENCODING, KEY_ID_METADATA, REFUSAL_METADATA, REFUSED_ENCODING, EncryptionCodec
from badges.temporal.converter import PAYLOAD_REFUSED, make_data_converter
from tests.conftest import create_member
from tests.support import statements_on

SECRET = b'{"merchant": "Lucky Bets Ltd"}'


def context(workflow_id: str) -> WorkflowSerializationContext:
    return WorkflowSerializationContext(namespace="default", workflow_id=workflow_id)


async def test_member_payloads_are_sealed_with_the_members_key(engine: AsyncEngine, keys: KeyStore) -> None:
    member = await create_member(engine, keys)
    codec = EncryptionCodec(keys).with_context(context(user_badges_workflow_id(member)))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=SECRET)

    [sealed] = await codec.encode([plain])

    assert sealed.metadata["encoding"] == ENCODING
    assert SECRET not in sealed.data
    member_key = await keys.live_key(str(member))
    assert sealed.metadata[KEY_ID_METADATA].decode() == member_key.key_id
    # Decoding needs no context: the key id travels with the payload.
    assert await EncryptionCodec(keys).decode([sealed]) == [plain]


async def sealed_for_a_new_member(engine: AsyncEngine, keys: KeyStore) -> tuple[uuid.UUID, Payload]:
    member = await create_member(engine, keys)
    codec = EncryptionCodec(keys).with_context(context(user_badges_workflow_id(member)))
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=SECRET)])
    return member, sealed


async def test_a_process_that_decoded_a_members_payload_encodes_theirs_without_a_read(
    engine: AsyncEngine, keys: KeyStore, settings: Settings
) -> None:
    member, sealed = await sealed_for_a_new_member(engine, keys)
    # Another process (nothing cached) decodes the member's payload: one read, by key id...
    worker_keys = KeyStore(engine, MasterKeys(settings.parsed_master_keys))
    with statements_on(engine, "data_keys") as statements:
        await EncryptionCodec(worker_keys).decode([sealed])
        assert len(statements) == 1
        # ...and then seals the next payload for that member with the key it read: no second read.
        worker_codec = EncryptionCodec(worker_keys).with_context(context(user_badges_workflow_id(member)))
        [again] = await worker_codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=SECRET)])
        assert len(statements) == 1
    assert again.metadata[KEY_ID_METADATA] == sealed.metadata[KEY_ID_METADATA]


async def test_a_key_read_while_its_owner_is_forgotten_is_not_kept(
    engine: AsyncEngine, keys: KeyStore, settings: Settings
) -> None:
    member, sealed = await sealed_for_a_new_member(engine, keys)
    worker_keys = KeyStore(engine, MasterKeys(settings.parsed_master_keys))

    def erasure_notice_meanwhile(connection: object, cursor: object, statement: str, *rest: object) -> None:
        if "data_keys" in statement:
            worker_keys.forget(str(member))  # the notice lands while the row is being read

    event.listen(engine.sync_engine, "before_cursor_execute", erasure_notice_meanwhile)
    try:
        await EncryptionCodec(worker_keys).decode([sealed])
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", erasure_notice_meanwhile)
    # Not kept as the member's live key: sealing for them reads the row again, and would find it
    # destroyed.
    with statements_on(engine, "data_keys") as statements:
        await worker_keys.live_key(str(member))
    assert len(statements) == 1


async def test_two_members_never_share_a_key(engine: AsyncEngine, keys: KeyStore) -> None:
    first, second = await create_member(engine, keys), await create_member(engine, keys)
    plain = Payload(metadata={"encoding": b"json/plain"}, data=SECRET)
    [a] = await EncryptionCodec(keys).with_context(context(user_badges_workflow_id(first))).encode([plain])
    [b] = await EncryptionCodec(keys).with_context(context(user_badges_workflow_id(second))).encode([plain])
    assert a.metadata[KEY_ID_METADATA] != b.metadata[KEY_ID_METADATA]


async def test_other_workflows_use_the_service_key(keys: KeyStore) -> None:
    codec = EncryptionCodec(keys).with_context(context("peer-stats/release"))
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    assert sealed.metadata[KEY_ID_METADATA].decode() == (await keys.live_key(SERVICE_OWNER)).key_id


async def test_unbound_unencrypted_payloads_pass_through_decode(keys: KeyStore) -> None:
    # Unbound (no workflow): the codec endpoint shows a plain payload as it is.
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b"1")
    assert await EncryptionCodec(keys).decode([plain]) == [plain]


async def test_a_destroyed_key_makes_payloads_unreadable(engine: AsyncEngine, keys: KeyStore) -> None:
    member = await create_member(engine, keys)
    codec = EncryptionCodec(keys).with_context(context(user_badges_workflow_id(member)))
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=SECRET)])
    async with engine.begin() as connection:
        await connection.execute(
            update(DataKey).where(DataKey.owner == str(member)).values(wrapped_key=None, destroyed_at=func.now())
        )
    keys.forget(str(member))

    with pytest.raises(KeyUnavailableError):
        await EncryptionCodec(keys).decode([sealed])
    with pytest.raises(KeyUnavailableError):
        await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])


async def test_the_converter_binds_the_members_key_without_rebuilding_its_parts(
    engine: AsyncEngine, keys: KeyStore
) -> None:
    converter = make_data_converter(keys)
    member = await create_member(engine, keys)

    bound = converter.with_context(context(user_badges_workflow_id(member)))

    assert isinstance(bound.payload_codec, EncryptionCodec)
    assert bound.payload_codec.owner == str(member)
    assert bound.payload_converter is converter.payload_converter
    [sealed] = await bound.encode([{"merchant": "Lucky Bets Ltd"}])
    assert sealed.metadata[KEY_ID_METADATA].decode() == (await keys.live_key(str(member))).key_id
    assert await converter.decode([sealed], [dict]) == [{"merchant": "Lucky Bets Ltd"}]
    # The base converter is untouched: it still seals with the service key.
    [service] = await converter.encode([1])
    assert service.metadata[KEY_ID_METADATA].decode() == (await keys.live_key(SERVICE_OWNER)).key_id


async def refused(codec: EncryptionCodec, payload: Payload) -> bool:
    [decoded] = await codec.decode([payload])
    return decoded.metadata["encoding"] == REFUSED_ENCODING


async def test_bound_to_a_workflow_it_opens_only_what_its_owners_key_sealed(
    engine: AsyncEngine, keys: KeyStore
) -> None:
    member, other = await create_member(engine, keys), await create_member(engine, keys)
    plain = Payload(metadata={"encoding": b"json/plain"}, data=SECRET)
    members = EncryptionCodec(keys).with_context(context(user_badges_workflow_id(member)))
    others = EncryptionCodec(keys).with_context(context(user_badges_workflow_id(other)))
    service = EncryptionCodec(keys).with_context(context(f"bank/{uuid.uuid4()}/sync"))
    # A member's erasure runs under the service key (it must replay after theirs is destroyed).
    erasure = EncryptionCodec(keys).with_context(context(f"user/{member}/erasure"))
    [own] = await members.encode([plain])
    [theirs] = await others.encode([plain])
    [services] = await service.encode([plain])

    assert await members.decode([own]) == [plain]
    assert await service.decode([services]) == [plain]
    assert await erasure.decode([services]) == [plain]
    for codec, payload in [
        (members, plain),  # not sealed
        (members, theirs),  # another member's key
        (members, services),  # the service key, in a member's workflow
        (service, own),  # a member's key, in a service workflow
        (erasure, own),
    ]:
        assert await refused(codec, payload)
    [refusal] = await members.decode([theirs])
    assert refusal.metadata[REFUSAL_METADATA] == b"sealed with another owner's key"
    assert refusal.data == b""  # nothing of what was sent goes on


async def test_bound_it_refuses_altered_and_unknown_keys_without_raising(engine: AsyncEngine, keys: KeyStore) -> None:
    member = await create_member(engine, keys)
    codec = EncryptionCodec(keys).with_context(context(user_badges_workflow_id(member)))
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=SECRET)])
    altered = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    truncated = Payload(metadata=dict(sealed.metadata), data=sealed.data[:5])
    for key_id in [uuid.uuid4().hex, "k\x00", "", "é" * 40]:
        unknown = Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()}, data=sealed.data)
        assert await refused(codec, unknown)
    assert await refused(codec, Payload(metadata={"encoding": ENCODING}, data=sealed.data))
    assert await refused(codec, altered)
    assert await refused(codec, truncated)


async def test_the_converter_turns_a_refused_payload_into_a_non_retryable_failure(
    engine: AsyncEngine, keys: KeyStore
) -> None:
    member = await create_member(engine, keys)
    bound = make_data_converter(keys).with_context(context(user_badges_workflow_id(member)))
    with pytest.raises(ApplicationError) as refusal:
        await bound.decode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")], [int])
    assert refusal.value.type == PAYLOAD_REFUSED and refusal.value.non_retryable
