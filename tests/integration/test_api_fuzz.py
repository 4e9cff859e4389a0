"""Schemathesis against the live OpenAPI document of a running system (uvicorn serving the API,
a worker, the Temporal dev server, PostgreSQL, the sandbox banks): every operation, with valid
member and staff tokens and without, generated valid and invalid input; no answer is a 5xx and
every error is RFC 9457 problem details (`schemathesis_hooks.errors_are_problem_details`), and
each answer is one the schema declares.

The system is this module's own (its database and its Temporal dev server): the fuzzer creates
badges, budgets, integrations and reviews, which must not reach the other tests' catalogue.
`make test` runs a short form (few examples per operation, no stateful phase); `make fuzz`
(HYPOTHESIS_PROFILE=fuzz) the long one: more examples and the stateful phase."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from badges.activities.webhooks import make_webhook_client
from badges.db.engine import make_engine
from badges.db.keys import KeyStore, MasterKeys
from badges.db.pool import open_pool
from badges.temporal.client import connect
from badges.temporal.converter import make_data_converter
from badges.workers.main import build_workers
from tests.conftest import BIN, FUZZ, fresh_database, make_settings
from tests.sandbox.conftest import Sandbox
from tests.support import dev_token, eventually, free_port, real_time_event, running_api

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
# Short: a handful of generated cases per operation plus the schema's examples and the coverage
# phase's boundary cases. Long: many more, and sequences of calls (stateful).
SHORT = ["--phases", "examples,coverage,fuzzing", "--max-examples", "5"]
LONG = [
    "--phases",
    "examples,coverage,fuzzing,stateful",
    "--max-examples",
    os.environ.get("BADGES_FUZZ_EXAMPLES", "200"),
]
RUN_LIMIT_SECONDS = 4 * 3600 if FUZZ else 240  # a guard against a hung run, not a speed assertion


@dataclass
class FuzzSystem:
    url: str
    member: dict[str, str]
    staff: dict[str, str]
    ids: dict[str, str]  # ids that exist, by path parameter name


@pytest.fixture(scope="module")
async def fuzz_system(
    admin_url: str, sandbox_bank: Sandbox, truelayer_bank: str, yodlee_bank: str
) -> AsyncIterator[FuzzSystem]:
    port = free_port()
    with fresh_database(admin_url) as database_url:
        settings = make_settings(
            database_url,
            plaid_host=sandbox_bank.url,
            truelayer_auth_url=truelayer_bank,
            truelayer_api_url=truelayer_bank,
            yodlee_api_url=yodlee_bank,
            yodlee_fastlink_url=f"{yodlee_bank}/fastlink",
            public_url=f"http://127.0.0.1:{port}",
        )
        engine = make_engine(settings.database_url)
        pool = await open_pool(settings.libpq_url)
        keys = KeyStore(engine, MasterKeys(settings.parsed_master_keys))
        env = await WorkflowEnvironment.start_local(
            data_converter=make_data_converter(keys),
            dev_server_existing_path=str(BIN / "temporal"),
            dev_server_log_level="error",
        )
        settings = settings.model_copy(update={"temporal_address": env.client.service_client.config.target_host})
        try:
            client = await connect(settings, keys)
            async with (
                make_webhook_client() as http,
                build_workers(client, settings, pool, engine=engine, keys=keys, http=http),
                running_api(settings, port) as url,
                httpx.AsyncClient(base_url=url, timeout=30) as api,
            ):
                member = await dev_token(api, "fuzz-member@example.com")
                staff = await dev_token(api, "fuzz-staff@example.com", ["admin", "compliance", "operator"])
                ids = await prepare(api, member, staff, sandbox_bank)
                yield FuzzSystem(url, member, staff, ids)
        finally:
            await env.shutdown()
            await pool.close()
            await engine.dispose()


async def prepare(
    api: httpx.AsyncClient, member: dict[str, str], staff: dict[str, str], sandbox: Sandbox
) -> dict[str, str]:
    """Something for the routes to find: every consent and a linked bank for the member, an
    export, an integration, a held burst (another member's) waiting for review. Answers the ids
    that exist, by path parameter name."""
    expires = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    scopes = ("open_banking", "behaviour_tracking", "peer_comparison", "demographics")
    body = {"scopes": {scope: {"purpose": "fuzzing", "expiresAt": expires} for scope in scopes}}
    assert (await api.put("/v1/me/consent", json=body, headers=member)).status_code == 202

    async def consented() -> bool:
        given = (await api.get("/v1/me/consent", headers=member)).json()["scopes"]
        return all(given.get(scope, {}).get("status") == "active" for scope in scopes)

    await eventually(consented)
    started = await api.post("/v1/me/bank/link-token", json={"provider": "plaid"}, headers=member)
    assert started.status_code == 200, started.text
    link_token = started.json()["linkToken"]
    finished = await sandbox.custom("/sandbox/link/complete", link_token=link_token, username="user_good")
    linked = await api.post(
        "/v1/me/bank/connections", json={"provider": "plaid", "publicToken": finished["public_token"]}, headers=member
    )
    assert linked.status_code == 201, linked.text
    ids = {"connection_id": linked.json()["id"], "badge_id": "calculator-explorer"}
    export = await api.get("/v1/me/export", headers=member)
    assert export.status_code in (200, 202), export.text
    ids["export_id"] = export.json()["exportId"]
    integration = await api.post(
        "/v1/admin/integrations", json={"integrationId": "fuzz-scanner", "eventTypes": ["attendance"]}, headers=staff
    )
    assert integration.status_code == 201, integration.text
    ids["integration_id"] = "fuzz-scanner"
    # An award, so that its Open Badges credential can be claimed (`{badge_id}`, `{instance}`).
    for number in range(3):
        event = real_time_event(f"calc-{number}", "fuzz-member@example.com")
        assert (await api.post("/v1/events", json=event, headers=member)).status_code == 202

    async def awarded() -> bool:
        badges = (await api.get("/v1/me/badges", headers=member)).json()["badges"]
        return any(badge["badgeId"] == "calculator-explorer" and badge["awarded"] for badge in badges)

    await eventually(awarded)
    ids["instance"] = "1"
    claimed = await api.get("/v1/me/badges/calculator-explorer/credentials/1", headers=member)
    assert claimed.status_code == 200, claimed.text
    [key] = (await api.get("/.well-known/jwks.json")).json()["keys"]
    ids["kid"] = key["kid"].rsplit("/", 1)[-1]
    # More calculator uses in a minute than a person makes: held for review.
    burst = await dev_token(api, "fuzz-burst@example.com")
    for number in range(31):
        event = real_time_event(f"burst-{number}", "fuzz-burst@example.com")
        assert (await api.post("/v1/events", json=event, headers=burst)).status_code == 202

    async def held() -> bool:
        items = (await api.get("/v1/admin/review-queue", headers=staff)).json()
        if items:
            ids["review_id"] = items[0]["reviewId"]
        return bool(items)

    await eventually(held)
    return ids


async def schemathesis(system: FuzzSystem, *options: str) -> tuple[int, str]:
    """Runs the `schemathesis` command against the system; its exit status and output."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BADGES_FUZZ_API": system.url,
        "BADGES_FUZZ_MEMBER_TOKEN": system.member["Authorization"].removeprefix("Bearer "),
        "BADGES_FUZZ_STAFF_TOKEN": system.staff["Authorization"].removeprefix("Bearer "),
        "BADGES_FUZZ_IDS": json.dumps(system.ids),
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{system.url}/openapi.json",
        "--seed",
        os.environ.get("BADGES_FUZZ_SEED", str(uuid.uuid4().int % 2**32)),
        *options,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_LIMIT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, output.decode(errors="replace")


@pytest.mark.timeout(RUN_LIMIT_SECONDS + 300)  # the suite's 300 s is shorter than a long run
async def test_no_operation_answers_a_server_error_or_an_error_that_is_not_a_problem(fuzz_system: FuzzSystem) -> None:
    status, output = await schemathesis(fuzz_system, *(LONG if FUZZ else SHORT))
    assert status == 0, output[-20000:]
