"""The Temporal remote codec endpoint (`POST /codec/decode`, `POST /codec/encode`), so the Web UI
shows staff decrypted payloads. Staff only (operator, compliance, admin), every call audited.

Decode: each payload is opened with the key named in its metadata. A payload whose key has been
destroyed (the member was erased) is returned as it came, still encrypted, and the answer is still
200: the UI shows it sealed. A payload that does not open with its key (altered ciphertext) is a 422
`undecodable-payload` naming each such payload; the call is audited all the same. Encode: the
service key, unless `X-Badges-Workflow-Id` names a member workflow (`user/{uuid}/...`), then that
member's key.

Credentials: a staff bearer token, or the codec session cookie. The Web UI sends no Authorization
header to an http endpoint (its "pass access token" needs https and a UI login), but with "include
cross-origin credentials" it sends cookies; `POST /codec/session`, called with a staff bearer token
from a browser (e.g. from /docs), stores that token in an HttpOnly, SameSite=Strict cookie scoped to
`/codec`, which the decode and encode routes honour only from the UI's origins. `DELETE` ends it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Request, Response
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.message import DecodeError
from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext

from badges.api.auth import STAFF_SCOPES, Principal, issue_token, verify_token
from badges.api.deps import (
    CODEC_SESSION_COOKIE,
    CodecPrincipal,
    Services,
    ServicesDep,
    SettingsDep,
    StaffPrincipal,
    staff_role,
)
from badges.api.problems import Problem
from badges.db.audit import record_audit
from badges.db.keys import KeyUnavailableError
from badges.domain.identity import SERVICE_OWNER
from badges.temporal.codec import ENCODING, KEY_ID_METADATA, EncryptionCodec

router = APIRouter(tags=["compliance"])

WORKFLOW_HEADER = "x-badges-workflow-id"
CODEC_SESSION_SECONDS = 3600


class PayloadsBody(BaseModel):
    payloads: list[dict[str, Any]]


def parse_payloads(body: PayloadsBody) -> list[Payload]:
    try:
        return [ParseDict(item, Payload()) for item in body.payloads]
    except Exception as exc:  # ParseError, or base64 that does not decode
        raise Problem(422, "invalid-payload", f"A payload is not a Temporal Payload in proto JSON: {exc}") from exc


def as_body(payloads: list[Payload]) -> PayloadsBody:
    return PayloadsBody(payloads=[MessageToDict(payload) for payload in payloads])


def subject_of(owner: str) -> uuid.UUID | None:
    if owner == SERVICE_OWNER:
        return None
    try:
        return uuid.UUID(owner)
    except ValueError:
        return None


@router.post("/codec/session", status_code=204)
async def open_session(
    request: Request, principal: StaffPrincipal, services: ServicesDep, settings: SettingsDep
) -> Response:
    """Open a codec session: a token good only for the codec endpoint (its own audience), for at
    most an hour and never beyond the caller's token, kept in an HttpOnly SameSite=Strict cookie
    scoped to `/codec`. The caller's own token never leaves this request."""
    lifetime = min(CODEC_SESSION_SECONDS, max(0, (principal.expires_at or 0) - int(time.time())))
    staff_scopes = sorted(principal.scopes & STAFF_SCOPES)
    token = issue_token(settings, principal.subject, staff_scopes, lifetime, codec_only=True)
    response = Response(status_code=204)
    response.set_cookie(
        CODEC_SESSION_COOKIE,
        token,
        max_age=lifetime,
        path="/codec",
        # Always Secure outside dev (behind a TLS proxy the request itself may look like http).
        secure=settings.badges_env != "dev" or request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    await audit_session(services, principal, "codec.session.open", request, {"expiresIn": lifetime})
    return response


@router.delete("/codec/session", status_code=204)
async def close_session(request: Request, services: ServicesDep, settings: SettingsDep) -> Response:
    """End the codec session in this browser (the token itself lapses within the hour)."""
    session = request.cookies.get(CODEC_SESSION_COOKIE)
    if session:
        with contextlib.suppress(Problem):  # an expired or foreign cookie: nothing to audit
            principal = verify_token(settings, session, codec_only=True)
            await audit_session(services, principal, "codec.session.close", request, {})
    response = Response(status_code=204)
    response.delete_cookie(CODEC_SESSION_COOKIE, path="/codec", httponly=True, samesite="strict")
    return response


async def audit_session(
    services: Services, principal: Principal, action: str, request: Request, details: dict[str, Any]
) -> None:
    await record_audit(
        services.pool,
        actor=principal.subject,
        actor_role=staff_role(principal),
        action=action,
        subject=None,
        resource="/codec/session",
        purpose=request.headers.get("x-audit-purpose") or "history review",
        details=details,
    )


@router.post("/codec/decode", response_model=PayloadsBody)
async def decode(
    body: PayloadsBody, request: Request, principal: CodecPrincipal, services: ServicesDep
) -> PayloadsBody:
    payloads = parse_payloads(body)
    key_ids = {
        key_id_of(p) for p in payloads if p.metadata.get("encoding") == ENCODING and KEY_ID_METADATA in p.metadata
    }
    # From the database on every call: a key destroyed since this replica cached it no longer opens.
    owners = await services.keys.key_owners(key_ids)
    codec = EncryptionCodec(services.keys)
    decoded: list[Payload] = []
    sealed = 0
    undecodable: list[int] = []
    subjects: set[uuid.UUID] = set()
    for index, payload in enumerate(payloads):
        if payload.metadata.get("encoding") != ENCODING:
            decoded.append(payload)
            continue
        owner, readable = owners.get(key_id_of(payload), ("", False))
        if (subject := subject_of(owner)) is not None:
            subjects.add(subject)
        if not readable:
            if owner:
                services.keys.forget(owner)
            decoded.append(payload)
            sealed += 1
            continue
        try:
            await services.keys.key_by_id(key_id_of(payload))
        except KeyUnavailableError:  # destroyed since `key_owners` read it: left sealed, as above
            services.keys.forget(owner)
            decoded.append(payload)
            sealed += 1
            continue
        try:  # the key is at hand (cached just now), so what fails here is the payload itself
            [opened] = await codec.decode([payload])
        except (InvalidTag, ValueError, DecodeError):  # altered, truncated, or sealed under another key
            undecodable.append(index)
            continue
        decoded.append(opened)
    resource = request.headers.get(WORKFLOW_HEADER) or "unknown workflow"
    purpose = request.headers.get("x-audit-purpose") or "history review"
    # One record per member whose payloads were asked for (or one with no subject for service data).
    audited: list[uuid.UUID | None] = [*sorted(subjects, key=str)] or [None]
    for subject in audited:
        await record_audit(
            services.pool,
            actor=principal.subject,
            actor_role=staff_role(principal),
            action="codec.decode",
            subject=subject,
            resource=resource,
            purpose=purpose,
            details={"payloads": len(payloads), "leftSealed": sealed}
            | ({"undecodable": undecodable} if undecodable else {}),
        )
    if undecodable:
        raise Problem(
            422,
            "undecodable-payload",
            f"{len(undecodable)} payload(s) do not open with the key their metadata names: altered or truncated.",
            errors=[
                {"field": f"body.payloads.{index}", "message": "does not open with its key"} for index in undecodable
            ],
        )
    return as_body(decoded)


def key_id_of(payload: Payload) -> str:
    # Metadata is caller-supplied bytes: a key id that is not UTF-8 is simply no key we know.
    return payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")


@router.post("/codec/encode", response_model=PayloadsBody)
async def encode(
    body: PayloadsBody, request: Request, principal: CodecPrincipal, services: ServicesDep
) -> PayloadsBody:
    payloads = parse_payloads(body)
    workflow_id = request.headers.get(WORKFLOW_HEADER)
    codec = EncryptionCodec(services.keys)
    if workflow_id:
        codec = codec.with_context(WorkflowSerializationContext(namespace="", workflow_id=workflow_id))
        if codec.owner != SERVICE_OWNER:
            # Re-read the member's key: one erased since this replica cached it must not seal anything.
            services.keys.forget(codec.owner)
    try:
        encoded = await codec.encode(payloads)
    except KeyUnavailableError as exc:
        raise Problem(410, "key-destroyed", "That member's key no longer exists.") from exc
    await record_audit(
        services.pool,
        actor=principal.subject,
        actor_role=staff_role(principal),
        action="codec.encode",
        subject=subject_of(codec.owner),
        resource=workflow_id or "unknown workflow",
        purpose=request.headers.get("x-audit-purpose") or "history review",
        details={"payloads": len(payloads)},
    )
    return as_body(encoded)
