"""Expensive calls are limited, and every limit holds across API processes: the counters live in
PostgreSQL, so two API apps (each with its own memory) sharing one database give a member, a
connection or a source address the configured rate between them, not twice it.

Rates here are low and each test counts against keys of its own (a new member, connection or
source address), so tests do not share windows. Source addresses are set with `X-Forwarded-For`,
which uvicorn takes from 127.0.0.1 (its default `--forwarded-allow-ips`).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg_pool import AsyncConnectionPool
from starlette.types import ASGIApp, Receive, Scope, Send

from badges.api.routes import export as export_route
from badges.banking.sandbox import SandboxSettings, create_sandbox_app
from badges.config import Settings
from badges.db.audit import AUDIT_LOCK_KEY
from badges.db.keys import KeyStore
from tests.integration.test_open_banking import linked_member
from tests.sandbox.conftest import Sandbox
from tests.support import dev_token, real_time_event, running_api, serving

pytestmark = pytest.mark.usefixtures("worker")

WEBHOOK_BODY = b'{"webhook_type":"TRANSACTIONS","webhook_code":"SYNC_UPDATES_AVAILABLE","item_id":"x"}'


def an_address() -> str:
    """A source address of this test's own (TEST-NET-3, RFC 5737)."""
    return f"203.0.113.{random.randrange(1, 255)}"


async def away_from_a_minute_boundary() -> None:
    """Windows start on the clock's minutes; a burst that crosses one may get one more through
    (the sliding window is an estimate there), so start well inside a minute."""
    if time.time() % 60 > 45:
        await asyncio.sleep(61 - time.time() % 60)


@asynccontextmanager
async def two_api_processes(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two API apps, each built by `create_app` with its own services and memory, on one database."""
    async with (
        running_api(settings) as first_url,
        running_api(settings) as second_url,
        httpx.AsyncClient(base_url=first_url, timeout=30) as first,
        httpx.AsyncClient(base_url=second_url, timeout=30) as second,
    ):
        yield first, second


async def test_the_member_event_rate_holds_across_api_processes(system_settings: Settings) -> None:
    settings = system_settings.model_copy(update={"member_event_rate": "4/minute"})
    async with two_api_processes(settings) as (first, second):
        sub = f"m-{uuid.uuid4()}"
        headers = await dev_token(first, sub)
        await away_from_a_minute_boundary()
        statuses = []
        for n in range(8):
            api = first if n % 2 == 0 else second
            statuses.append(
                (await api.post("/v1/events", json=real_time_event(f"x{n}", sub), headers=headers)).status_code
            )
    # Per process, each would have taken 4 of its own 4.
    assert statuses.count(202) == 4, statuses
    assert statuses == [202, 202, 202, 202, 429, 429, 429, 429]


async def test_unauthenticated_routes_are_limited_per_source_address_across_processes(
    system_settings: Settings,
) -> None:
    settings = system_settings.model_copy(update={"address_rate": "3/minute"})
    address, other = an_address(), an_address()
    while other == address:
        other = an_address()
    async with two_api_processes(settings) as (first, second):
        await away_from_a_minute_boundary()
        statuses = []
        for n in range(6):
            api = first if n % 2 == 0 else second
            response = await api.post(
                "/v1/webhooks/plaid",
                content=WEBHOOK_BODY,
                headers={"Plaid-Verification": "not.a.jwt", "X-Forwarded-For": address},
            )
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429, 429, 429]
        limited = await first.post(
            "/v1/integrations/anything/events", content=b"{}", headers={"X-Forwarded-For": address}
        )
        assert limited.status_code == 429 and limited.json()["type"] == "urn:badges:problem:rate-limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 120
        # The dev token (only where BADGES_ENV=dev) counts too; another address is unaffected.
        token = await second.post(
            "/v1/dev/token", json={"sub": "x", "scopes": ["user"]}, headers={"X-Forwarded-For": address}
        )
        assert token.status_code == 429
        fresh = await second.post(
            "/v1/webhooks/plaid", content=WEBHOOK_BODY, headers={"Plaid-Verification": "x", "X-Forwarded-For": other}
        )
        assert fresh.status_code == 401


class CountingKeyFetches:
    """The sandbox bank, counting the verification-key fetches it is asked for."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.fetches = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/webhook_verification_key/get":
            self.fetches += 1
        await self.app(scope, receive, send)


def signed_with_unknown_key(kid: str) -> str:
    stranger = ec.generate_private_key(ec.SECP256R1())
    claims = {"iat": int(time.time()), "request_body_sha256": "0" * 64}
    return jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": kid})


async def test_unknown_plaid_key_ids_are_cached_and_key_fetches_limited_per_address(
    system_settings: Settings,
) -> None:
    bank = CountingKeyFetches(create_sandbox_app(SandboxSettings()))
    async with serving(bank) as bank_url:
        settings = system_settings.model_copy(update={"plaid_host": bank_url, "key_fetch_rate": "2/minute"})
        async with two_api_processes(settings) as (first, second):
            await away_from_a_minute_boundary()
            # A new random kid on every webhook, from one address: two fetches, then 429 without one.
            address = an_address()
            statuses = []
            for n in range(5):
                api = first if n % 2 == 0 else second
                response = await api.post(
                    "/v1/webhooks/plaid",
                    content=WEBHOOK_BODY,
                    headers={
                        "Plaid-Verification": signed_with_unknown_key(str(uuid.uuid4())),
                        "X-Forwarded-For": address,
                    },
                )
                statuses.append(response.status_code)
            assert statuses == [401, 401, 429, 429, 429]
            assert bank.fetches == 2
            # One unknown kid, again and again (from other addresses): Plaid is asked once per process.
            kid = str(uuid.uuid4())
            for _ in range(4):
                response = await first.post(
                    "/v1/webhooks/plaid",
                    content=WEBHOOK_BODY,
                    headers={"Plaid-Verification": signed_with_unknown_key(kid), "X-Forwarded-For": an_address()},
                )
                assert response.status_code == 401
            assert bank.fetches == 3


async def test_exports_are_reused_then_limited_per_member(
    system_settings: Settings, pool: AsyncConnectionPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = system_settings.model_copy(update={"export_rate": "2/day"})
    async with two_api_processes(settings) as (first, second):
        headers = await dev_token(first, f"{uuid.uuid4()}@example.com")
        user_id = (await first.get("/v1/me", headers=headers)).json()["userId"]
        made = await first.get("/v1/me/export", headers=headers)
        assert made.status_code == 200, made.text
        again = await second.get("/v1/me/export", headers=headers)
        assert again.status_code == 200
        # The one just made, not another sealed copy of every table.
        assert again.json()["exportId"] == made.json()["exportId"]
        async with pool.connection() as connection:
            cursor = await connection.execute("SELECT count(*) FROM member_exports WHERE user_id = %s", (user_id,))
            assert await cursor.fetchone() == (1,)

        monkeypatch.setattr(export_route, "EXPORT_FRESH_FOR", timedelta(0))
        newer = await second.get("/v1/me/export", headers=headers)
        assert newer.status_code == 200 and newer.json()["exportId"] != made.json()["exportId"]
        limited = await first.get("/v1/me/export", headers=headers)
        assert limited.status_code == 429, limited.text
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["latestExport"] == f"/v1/me/export/{newer.json()['exportId']}"
        assert (await first.get(limited.json()["latestExport"], headers=headers)).status_code == 200


async def test_forced_syncs_are_limited_per_connection(
    system_settings: Settings,
    client: httpx.AsyncClient,
    sandbox_bank: Sandbox,
    pool: AsyncConnectionPool,
    keys: KeyStore,
) -> None:
    headers, _, connection_id, _ = await linked_member(client, sandbox_bank, pool, keys, "user_good")
    settings = system_settings.model_copy(update={"relink_rate": "2/hour"})
    async with two_api_processes(settings) as (first, second):
        path = f"/v1/me/bank/connections/{connection_id}/relinked"
        statuses = [(await api.post(path, headers=headers)).status_code for api in (first, second, first, second)]
    assert statuses == [202, 202, 429, 429]


async def read_audits(pool: AsyncConnectionPool, user_id: str, action: str) -> int:
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT count(*) FROM audit_log WHERE subject = %s AND action = %s", (user_id, action)
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_member_reads_are_audited_once_a_minute_without_waiting_on_the_audit_lock(
    client: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    headers = await dev_token(client, f"m-{uuid.uuid4()}")
    user_id = (await client.get("/v1/me", headers=headers)).json()["userId"]
    if time.time() % 60 > 50:  # the reads below fall in one minute
        await asyncio.sleep(61 - time.time() % 60)
    assert (await client.get("/v1/me/rewards", headers=headers)).status_code == 200
    assert await read_audits(pool, user_id, "read.rewards") == 1

    # Someone holds the audit chain's lock (a long consent change, say): the member's further
    # reads in this minute are covered by the record above, so they neither wait nor append.
    async with pool.connection() as holder, holder.transaction():
        await holder.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK_KEY,))
        reads = [client.get("/v1/me/rewards", headers=headers) for _ in range(5)]
        responses = await asyncio.wait_for(asyncio.gather(*reads), timeout=60)
    assert [response.status_code for response in responses] == [200] * 5
    assert await read_audits(pool, user_id, "read.rewards") == 1
