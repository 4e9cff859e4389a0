"""The audited codec endpoint the Temporal Web UI calls: auth, CORS, audit, erasure; and failures
sealed by the converter."""

from __future__ import annotations

import uuid

import httpx
from google.protobuf.json_format import MessageToDict, ParseDict
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter, WorkflowSerializationContext
from temporalio.exceptions import ApplicationError

from badges.db.keys import DataKey, KeyStore
from badges.domain.identity import user_badges_workflow_id
from badges.temporal.converter import make_data_converter
from tests.conftest import create_member
from tests.support import dev_token

SECRET = "Lucky Bets Ltd"
UI_ORIGIN = "http://localhost:8233"


def bound(converter: DataConverter, workflow_id: str) -> DataConverter:
    return converter.with_context(WorkflowSerializationContext(namespace="default", workflow_id=workflow_id))


async def sealed_member_payload(engine: AsyncEngine, keys: KeyStore) -> tuple[uuid.UUID, str, Payload, Payload]:
    member = await create_member(engine, keys)
    workflow_id = user_badges_workflow_id(member)
    converter = bound(make_data_converter(keys), workflow_id)
    [plain] = converter.payload_converter.to_payloads([{"merchant": SECRET}])
    [sealed] = await converter.encode([{"merchant": SECRET}])
    assert SECRET.encode() not in sealed.data
    return member, workflow_id, plain, sealed


async def audit_rows(pool: AsyncConnectionPool, action: str, subject: uuid.UUID) -> list[tuple[str, str, str]]:
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT actor, actor_role, resource FROM audit_log WHERE action = %s AND subject = %s ORDER BY id",
            (action, subject),
        )
        return [tuple(row) for row in await cursor.fetchall()]  # type: ignore[misc]


async def test_staff_decode_a_members_payload_and_it_is_audited(
    client: httpx.AsyncClient, engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    member, workflow_id, plain, sealed = await sealed_member_payload(engine, keys)
    staff_sub = f"cmp-{uuid.uuid4()}"
    headers = {**await dev_token(client, staff_sub, ["compliance"]), "X-Badges-Workflow-Id": workflow_id}

    response = await client.post("/codec/decode", json={"payloads": [MessageToDict(sealed)]}, headers=headers)

    assert response.status_code == 200, response.text
    [opened] = [ParseDict(item, Payload()) for item in response.json()["payloads"]]
    assert opened == plain
    assert await audit_rows(pool, "codec.decode", member) == [(staff_sub, "compliance", workflow_id)]

    # Encoding for that workflow seals with the member's key; decoding restores it.
    response = await client.post("/codec/encode", json={"payloads": [MessageToDict(plain)]}, headers=headers)
    assert response.status_code == 200
    [resealed] = [ParseDict(item, Payload()) for item in response.json()["payloads"]]
    assert SECRET.encode() not in resealed.data
    assert resealed.metadata["encryption-key-id"] == sealed.metadata["encryption-key-id"]
    assert len(await audit_rows(pool, "codec.encode", member)) == 1


async def test_the_codec_needs_a_staff_token(client: httpx.AsyncClient, engine: AsyncEngine, keys: KeyStore) -> None:
    _, _, _, sealed = await sealed_member_payload(engine, keys)
    body = {"payloads": [MessageToDict(sealed)]}
    assert (await client.post("/codec/decode", json=body)).status_code == 401
    member = await dev_token(client, f"m-{uuid.uuid4()}")
    assert (await client.post("/codec/decode", json=body, headers=member)).status_code == 403
    operator = await dev_token(client, f"ops-{uuid.uuid4()}", ["operator"])
    assert (await client.post("/codec/decode", json=body, headers=operator)).status_code == 200


async def test_cors_preflight_only_for_the_web_ui(client: httpx.AsyncClient) -> None:
    request_headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    allowed = await client.options("/codec/decode", headers={**request_headers, "Origin": UI_ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert allowed.headers["access-control-allow-credentials"] == "true"
    allow_headers = allowed.headers["access-control-allow-headers"].lower()
    assert all(h in allow_headers for h in ("authorization", "content-type", "x-namespace"))

    refused = await client.options("/codec/decode", headers={**request_headers, "Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in refused.headers
    # The rest of the API gives no CORS to the UI's origin.
    other = await client.get("/healthz", headers={"Origin": UI_ORIGIN})
    assert "access-control-allow-origin" not in other.headers


async def test_after_erasure_the_codec_no_longer_decodes(
    client: httpx.AsyncClient, engine: AsyncEngine, keys: KeyStore
) -> None:
    member, workflow_id, plain, sealed = await sealed_member_payload(engine, keys)
    headers = {**await dev_token(client, f"cmp-{uuid.uuid4()}", ["compliance"]), "X-Badges-Workflow-Id": workflow_id}
    body = {"payloads": [MessageToDict(sealed)]}
    first = await client.post("/codec/decode", json=body, headers=headers)
    assert ParseDict(first.json()["payloads"][0], Payload()) == plain  # and now the API has it cached

    async with engine.begin() as connection:
        await connection.execute(
            update(DataKey).where(DataKey.owner == str(member)).values(wrapped_key=None, destroyed_at=func.now())
        )

    after = await client.post("/codec/decode", json=body, headers=headers)
    assert after.status_code == 200
    [still_sealed] = [ParseDict(item, Payload()) for item in after.json()["payloads"]]
    assert still_sealed == sealed
    assert SECRET.encode() not in still_sealed.data
    assert (await client.post("/codec/encode", json=body, headers=headers)).status_code == 410


async def test_failures_are_sealed_by_the_converter(engine: AsyncEngine, keys: KeyStore) -> None:
    member = await create_member(engine, keys)
    converter = bound(make_data_converter(keys), user_badges_workflow_id(member))
    failure = Failure()
    try:
        raise ApplicationError(f"card declined at {SECRET}")
    except ApplicationError as error:
        await converter.encode_failure(error, failure)

    assert SECRET not in failure.message
    assert SECRET.encode() not in failure.SerializeToString()
    assert failure.HasField("encoded_attributes")
    restored = await converter.decode_failure(failure)
    assert SECRET in str(restored)


async def test_a_codec_session_is_good_for_the_codec_only(
    client: httpx.AsyncClient, engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    _, _, plain, sealed = await sealed_member_payload(engine, keys)
    staff_sub = f"cmp-{uuid.uuid4()}"
    staff = await dev_token(client, staff_sub, ["compliance"])
    opened = await client.post("/codec/session", headers=staff)
    assert opened.status_code == 204
    session = opened.cookies["badges_codec_session"]
    client.cookies.clear()  # sent explicitly below
    cookie = {"Cookie": f"badges_codec_session={session}"}
    assert session != staff["Authorization"].split()[1]  # its own token, not the caller's
    body = {"payloads": [MessageToDict(sealed)]}

    from_ui = await client.post("/codec/decode", json=body, headers={**cookie, "Origin": UI_ORIGIN})
    assert from_ui.status_code == 200
    assert [ParseDict(item, Payload()) for item in from_ui.json()["payloads"]] == [plain]
    # Not from another origin, and not as a bearer token anywhere else.
    elsewhere = await client.post("/codec/decode", json=body, headers={**cookie, "Origin": "https://evil.test"})
    assert elsewhere.status_code == 403
    assert (await client.get("/v1/admin/audit", headers={"Authorization": f"Bearer {session}"})).status_code == 401
    # A staff bearer token is no codec session either.
    staff_cookie = {"Cookie": f"badges_codec_session={staff['Authorization'].split()[1]}", "Origin": UI_ORIGIN}
    bearer_as_cookie = await client.post("/codec/decode", json=body, headers=staff_cookie)
    assert bearer_as_cookie.status_code == 401

    closed = await client.delete("/codec/session", headers=cookie)
    assert closed.status_code == 204
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT action FROM audit_log WHERE actor = %s AND action LIKE 'codec.session%%' ORDER BY id", (staff_sub,)
        )
        assert [row[0] for row in await cursor.fetchall()] == ["codec.session.open", "codec.session.close"]


async def test_a_tampered_payload_is_refused_by_name_and_the_call_is_audited(
    client: httpx.AsyncClient, engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    member, workflow_id, _, sealed = await sealed_member_payload(engine, keys)
    staff_sub = f"cmp-{uuid.uuid4()}"
    headers = {**await dev_token(client, staff_sub, ["compliance"]), "X-Badges-Workflow-Id": workflow_id}
    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])  # one bit of the GCM tag flipped
    truncated = Payload()
    truncated.CopyFrom(sealed)
    truncated.data = sealed.data[:5]  # shorter than the nonce

    body = {"payloads": [MessageToDict(p) for p in (sealed, tampered, truncated)]}
    response = await client.post("/codec/decode", json=body, headers=headers)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:badges:problem:undecodable-payload"
    assert [error["field"] for error in problem["errors"]] == ["body.payloads.1", "body.payloads.2"]
    assert SECRET not in response.text
    [(actor, role, resource)] = await audit_rows(pool, "codec.decode", member)
    assert (actor, role, resource) == (staff_sub, "compliance", workflow_id)
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT details FROM audit_log WHERE action = 'codec.decode' AND subject = %s", (member,)
        )
        [(details,)] = await cursor.fetchall()
    assert details["undecodable"] == [1, 2]

    # A key id that is not even UTF-8 is no 500 either: an unknown key, the payload left sealed.
    garbled = Payload()
    garbled.CopyFrom(sealed)
    garbled.metadata["encryption-key-id"] = b"\xff\xfe"
    response = await client.post("/codec/decode", json={"payloads": [MessageToDict(garbled)]}, headers=headers)
    assert response.status_code == 200, response.text
    assert ParseDict(response.json()["payloads"][0], Payload()) == garbled
