"""Open Badges 3.0 credentials end to end: a member earns a badge through the real API, worker and
Temporal, claims its credential, and it is checked as a verifier elsewhere would check it:
against 1EdTech's JSON schema (shipped in tests/credentials/) and with jwcrypto, a JOSE
implementation that is not the PyJWT our code signs and verifies with, reading the keys from the
published JWKS. Then a tampered credential and revoked ones (at the member's request, when the
award is gone, at erasure) are refused, and a rotated issuer key leaves old credentials valid."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from jwcrypto import jwk, jws
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.db.credentials import rotate_issuer_key
from badges.db.keys import KeyStore
from badges.domain.credentials import status_bit
from tests.support import dev_token, eventually, real_time_event

pytestmark = pytest.mark.usefixtures("worker")

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "credentials" / "ob_v3p0_achievementcredential_schema.json").read_text()
)
BADGE = "calculator-explorer"


async def member_with_award(client: httpx.AsyncClient) -> tuple[str, dict[str, str], uuid.UUID]:
    """A new member who earned Calculator explorer (three calculator uses): email, headers, id."""
    email = f"Dana.{uuid.uuid4().hex[:8]}@Example.com"
    headers = await dev_token(client, email)
    user_id = uuid.UUID((await client.get("/v1/me", headers=headers)).json()["userId"])
    for n in range(3):
        event = real_time_event(f"calc-{uuid.uuid4()}-{n}", email)
        assert (await client.post("/v1/events", json=event, headers=headers)).status_code == 202

    async def awarded() -> bool:
        badges = (await client.get("/v1/me/badges", headers=headers)).json()["badges"]
        return any(badge["badgeId"] == BADGE and badge["awarded"] for badge in badges)

    await eventually(awarded, timeout=60)
    return email, headers, user_id


def verify_independently(token: str, key_set: dict[str, Any]) -> dict[str, Any]:
    """What a verifier with jwcrypto does: the key the header names, from the published set; the
    signature; the payload. Raises if the signature does not hold."""
    keys = jwk.JWKSet.from_json(json.dumps(key_set))
    signed = jws.JWS()
    signed.deserialize(token)
    kid = signed.jose_header["kid"]
    assert set(signed.jose_header) == {"alg", "kid", "typ"}, signed.jose_header  # OB 3.0 allows no other
    signed.verify(keys.get_key(kid), alg="ES256")
    return json.loads(signed.payload)


async def verify(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.post("/v1/credentials/verify", json={"credential": token})
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_claimed_credential_is_valid_open_badges_and_verifies_elsewhere(
    client: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    email, headers, user_id = await member_with_award(client)
    awards = [b for b in (await client.get("/v1/me/badges", headers=headers)).json()["badges"] if b["badgeId"] == BADGE]
    instance = awards[0]["awards"][0]["instance"]

    response = await client.get(f"/v1/me/badges/{BADGE}/credentials/{instance}", headers=headers)
    assert response.status_code == 200, response.text
    issued = response.json()
    token, credential = issued["jwt"], issued["credential"]

    # 1EdTech's schema, as published.
    jsonschema.Draft201909Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(credential)
    assert credential["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    assert credential["credentialSubject"]["achievement"]["criteria"]["narrative"] == (
        "Recorded 3 uses of a financial calculator."
    )

    # Verified with jwcrypto against the keys published at /.well-known/jwks.json.
    key_set = (await client.get("/.well-known/jwks.json")).json()
    assert all("d" not in key for key in key_set["keys"])  # public halves only
    payload = verify_independently(token, key_set)
    assert payload["iss"] == credential["issuer"]["id"] and payload["jti"] == credential["id"]
    assert payload["sub"] == credential["credentialSubject"]["id"]
    assert payload["nbf"] == int(datetime.fromisoformat(credential["validFrom"]).timestamp())
    # The kid is a URL that answers with that key; the issuer id answers with the profile.
    header_kid = _header(token)["kid"]
    assert (await client.get(httpx.URL(header_kid).path)).json()["kid"] == header_kid
    profile = (await client.get(httpx.URL(credential["issuer"]["id"]).path)).json()
    assert profile["type"] == ["Profile"] and profile["id"] == credential["issuer"]["id"]
    achievement = (await client.get(httpx.URL(credential["credentialSubject"]["achievement"]["id"]).path)).json()
    assert achievement["name"] == "Calculator explorer"

    # The recipient: only a salted hash of the email (as typed, lower-cased), no internal id or subject.
    identity = credential["credentialSubject"]["identifier"][0]
    expected = "sha256$" + hashlib.sha256((email.lower() + identity["salt"]).encode()).hexdigest()
    assert identity["identityHash"] == expected and identity["identityType"] == "emailAddress"
    decoded = json.dumps(payload)
    assert str(user_id) not in decoded and email.lower() not in decoded and email not in decoded

    assert (await verify(client, token))["verified"] is True
    # Asked again: the same credential (id, status bit), freshly salted and signed.
    again = (await client.get(f"/v1/me/badges/{BADGE}/credentials/{instance}", headers=headers)).json()
    assert again["credentialId"] == issued["credentialId"] and again["statusListIndex"] == issued["statusListIndex"]

    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT count(*) FROM audit_log WHERE subject = %s AND action = 'credential.issued'", (user_id,)
        )
        assert (await cursor.fetchone()) == (2,)


def _header(token: str) -> dict[str, Any]:
    signed = jws.JWS()
    signed.deserialize(token)
    return dict(signed.jose_header)


async def test_tampered_and_revoked_credentials_are_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, pool: AsyncConnectionPool
) -> None:
    _, headers, user_id = await member_with_award(client)
    path = f"/v1/me/badges/{BADGE}/credentials/1"
    issued = (await client.get(path, headers=headers)).json()
    token = issued["jwt"]

    # Tampered: a better-sounding achievement in the payload, the signature unchanged.
    head, body, signature = token.split(".")
    claims = json.loads(jws.base64url_decode(body))
    claims["credentialSubject"]["achievement"]["name"] = "Gold saver"
    forged = ".".join([head, jws.base64url_encode(json.dumps(claims).encode()), signature])
    result = await verify(client, forged)
    assert result["verified"] is False and result["checks"][-1] == {
        "check": "signature",
        "passed": False,
        "detail": result["checks"][-1]["detail"],
    }
    key_set = (await client.get("/.well-known/jwks.json")).json()
    with pytest.raises(jws.InvalidJWSSignature):
        verify_independently(forged, key_set)

    # Revoked at the member's request: the signed status list says so, read independently too.
    revoked = await client.delete(path, headers=headers)
    assert revoked.status_code == 200 and revoked.json()["credentialId"] == issued["credentialId"].removeprefix(
        "urn:uuid:"
    )
    result = await verify(client, token)
    assert result["verified"] is False and result["revoked"] is True
    status_list = await client.get(httpx.URL(issued["statusListCredential"]).path)
    assert status_list.headers["content-type"].startswith("application/vc+jwt")
    listing = verify_independently(status_list.text, key_set)
    assert listing["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert status_bit(listing["credentialSubject"]["encodedList"], issued["statusListIndex"])
    assert (await client.delete(path, headers=headers)).status_code == 404

    # Asked again after revoking: a new credential, valid, on a new bit.
    fresh = (await client.get(path, headers=headers)).json()
    assert fresh["credentialId"] != issued["credentialId"]
    assert (await verify(client, fresh["jwt"]))["verified"] is True

    # The award gone (taken back): its credential reads revoked.
    async with pool.connection() as connection:
        await connection.execute("DELETE FROM awards WHERE user_id = %s AND badge_id = %s", (user_id, BADGE))
    assert (await verify(client, fresh["jwt"]))["revoked"] is True


async def test_erasure_revokes_every_credential_of_the_member(
    client: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    _, headers, user_id = await member_with_award(client)
    token = (await client.get(f"/v1/me/badges/{BADGE}/credentials/1", headers=headers)).json()["jwt"]
    assert (await verify(client, token))["verified"] is True
    erased = await client.delete("/v1/me", headers=headers)
    assert erased.status_code == 200, erased.text
    result = await verify(client, token)
    assert result["verified"] is False and result["revoked"] is True
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT count(*) FROM credentials WHERE user_id = %s", (user_id,))
        assert (await cursor.fetchone()) == (0,)  # the rows stay, naming no one


async def test_a_rotated_key_still_verifies_what_it_signed(
    client: httpx.AsyncClient, engine: AsyncEngine, keys: KeyStore, pool: AsyncConnectionPool
) -> None:
    _, headers, _ = await member_with_award(client)
    path = f"/v1/me/badges/{BADGE}/credentials/1"
    before = (await client.get(path, headers=headers)).json()["jwt"]
    await rotate_issuer_key(engine, keys, datetime.now(UTC))
    after = (await client.get(path, headers=headers)).json()["jwt"]
    assert _header(before)["kid"] != _header(after)["kid"]
    published = {key["kid"] for key in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert {_header(before)["kid"], _header(after)["kid"]} <= published
    assert (await verify(client, before))["verified"] is True
    assert (await verify(client, after))["verified"] is True
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT count(*) FILTER (WHERE sealed_private_key IS NOT NULL), count(*) FROM issuer_keys"
        )
        live, total = await cursor.fetchone() or (0, 0)
    assert live == 1 and total >= 2  # retired keys' private halves destroyed


async def test_a_member_without_the_award_or_an_email_gets_nothing(client: httpx.AsyncClient) -> None:
    headers = await dev_token(client, f"erin-{uuid.uuid4()}@example.com")
    missing = await client.get(f"/v1/me/badges/{BADGE}/credentials/1", headers=headers)
    assert missing.status_code == 404 and missing.json()["type"].endswith("award-not-found")
    no_email = await dev_token(client, f"member-{uuid.uuid4()}")
    refused = await client.get(f"/v1/me/badges/{BADGE}/credentials/1", headers=no_email)
    assert refused.status_code == 422 and refused.json()["type"].endswith("no-identity-to-disclose")
    garbage = await verify(client, "not-a-credential")
    assert garbage["verified"] is False and garbage["checks"][0]["check"] == "format"
