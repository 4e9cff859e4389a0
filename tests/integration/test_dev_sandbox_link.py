"""`POST /v1/dev/sandbox/link` (and `GET /v1/dev/sandbox/personas`): the dashboard's Link at the
local sandbox bank, only where BADGES_ENV=dev; the sandbox's credentials never reach the browser."""

from __future__ import annotations

import httpx
import pytest

from badges.api.auth import issue_token
from badges.banking.sandbox.personas import PERSONAS
from badges.banking.sandbox_link import SANDBOX_PERSONAS
from badges.config import Settings
from tests.integration.test_open_banking import consenting_member, wait_status
from tests.support import dev_token, running_api

pytestmark = pytest.mark.usefixtures("worker")


def test_every_sandbox_persona_is_offered_with_words_for_it() -> None:
    assert set(SANDBOX_PERSONAS) == set(PERSONAS)


async def test_a_member_links_the_sandbox_bank_through_the_api_alone(client: httpx.AsyncClient) -> None:
    headers, _ = await consenting_member(client)
    personas = await client.get("/v1/dev/sandbox/personas", headers=headers)
    assert personas.status_code == 200
    assert {"username": "user_saver", "description": SANDBOX_PERSONAS["user_saver"]} in personas.json()["personas"]

    started = await client.post("/v1/me/bank/link-token", json={"provider": "plaid"}, headers=headers)
    finished = await client.post(
        "/v1/dev/sandbox/link",
        json={"linkToken": started.json()["linkToken"], "username": "user_saver"},
        headers=headers,
    )
    assert finished.status_code == 200, finished.text
    assert set(finished.json()) == {"publicToken"}
    linked = await client.post(
        "/v1/me/bank/connections",
        json={"provider": "plaid", "publicToken": finished.json()["publicToken"]},
        headers=headers,
    )
    assert linked.status_code == 201, linked.text
    await wait_status(client, headers, "active")


async def test_bad_requests_are_refused_with_what_is_wrong(client: httpx.AsyncClient) -> None:
    headers = await dev_token(client, "sandbox-link-refusals@example.com")
    body = {"linkToken": "link-sandbox-never-issued", "username": "user_saver"}
    assert (await client.post("/v1/dev/sandbox/link", json=body)).status_code == 401
    unknown = await client.post("/v1/dev/sandbox/link", json={**body, "username": "user_nobody"}, headers=headers)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.username"
    refused = await client.post("/v1/dev/sandbox/link", json=body, headers=headers)
    assert refused.status_code == 400 and refused.json()["type"].endswith("provider-refused"), refused.text


async def test_outside_dev_there_is_no_sandbox_link(system_settings: Settings) -> None:
    prod = system_settings.model_copy(update={"badges_env": "prod"})
    headers = {"Authorization": f"Bearer {issue_token(prod, 'someone@example.com', ['user'])}"}
    async with running_api(prod) as url, httpx.AsyncClient(base_url=url) as client:
        body = {"linkToken": "link-sandbox-x", "username": "user_saver"}
        assert (await client.post("/v1/dev/sandbox/link", json=body, headers=headers)).status_code == 404
        assert (await client.get("/v1/dev/sandbox/personas", headers=headers)).status_code == 404
