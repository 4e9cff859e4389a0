"""The real Temporal Web UI, in headless Chromium, shows a member's encrypted workflow input
decrypted by our codec endpoint, and only to a browser holding a staff codec session.

How the browser gets there is how a staff member does it: open the API in the browser and
`POST /codec/session` with a staff bearer token (from /docs, say), which sets the HttpOnly codec
session cookie; in the Web UI's codec settings, use the browser's own setting (endpoint
`<api>/codec`) with "include cross-origin credentials", which the UI keeps in localStorage (the
dev server's `--ui-codec-endpoint` cannot turn that option on). Then the UI's calls to
`<api>/codec/decode` carry the cookie.
"""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import quote

import httpx
from playwright.async_api import Browser, BrowserContext, Page, Response
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest

from badges.db.keys import KeyStore
from badges.domain.identity import user_badges_workflow_id
from badges.temporal.codec import ENCODING
from tests.browser.conftest import WebUiStack
from tests.conftest import create_member
from tests.support import dev_token

UI_TIMEOUT_MS = 20_000


async def start_sealed_workflow(
    stack: WebUiStack, engine: AsyncEngine, keys: KeyStore, secret: str
) -> tuple[str, str, str]:
    """A workflow under a member's id, so the client's converter seals its input with the member's
    key; no worker polls its task queue, so it just waits with that input in its history. Returns
    its id, run id and its input as stored (base64 of the ciphertext)."""
    member = await create_member(engine, keys)
    workflow_id = f"user/{member}/browser-probe"
    handle = await stack.temporal.start_workflow(
        "BrowserProbeWorkflow", {"merchant": secret}, id=workflow_id, task_queue=f"nobody-{uuid.uuid4()}"
    )
    history = await stack.temporal.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(
            namespace="default", execution=WorkflowExecution(workflow_id=workflow_id, run_id=handle.result_run_id)
        )
    )
    [started] = [e for e in history.history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED]
    [payload] = started.workflow_execution_started_event_attributes.input.payloads
    assert payload.metadata["encoding"] == ENCODING and secret.encode() not in payload.data
    assert handle.result_run_id is not None
    return workflow_id, handle.result_run_id, base64.b64encode(payload.data).decode()


async def new_context(browser: Browser, stack: WebUiStack) -> BrowserContext:
    """A fresh browser profile whose Web UI uses the browser's codec setting, as the UI's codec
    settings dialog stores it when a user picks their own endpoint with cross-origin credentials
    (keys of the UI's data-encoder-config store, JSON values), in place before the UI loads."""
    context = await browser.new_context()
    context.set_default_timeout(UI_TIMEOUT_MS)
    settings = {
        "overrideRemoteCodecConfiguration": True,
        "endpoint": f"{stack.api_url}/codec",
        "includeCredentials": True,
        "passAccessToken": False,
    }
    script = f"""
        if (location.origin === {json.dumps(stack.ui_url)}) {{
            for (const [key, value] of Object.entries({json.dumps(settings)}))
                localStorage.setItem(key, JSON.stringify(value));
        }}
    """
    await context.add_init_script(script)
    return context


async def open_workflow(page: Page, stack: WebUiStack, workflow_id: str, run_id: str) -> Response:
    """Open the workflow's page and return the UI's first answer from the codec endpoint."""
    url = f"{stack.ui_url}/namespaces/default/workflows/{quote(workflow_id, safe='')}/{run_id}/history"
    async with page.expect_response(lambda r: "/codec/decode" in r.url and r.request.method == "POST") as answer:
        await page.goto(url)
    return await answer.value


async def test_web_ui_shows_decoded_input_only_with_a_staff_codec_session(
    web_ui_stack: WebUiStack, browser: Browser, engine: AsyncEngine, keys: KeyStore
) -> None:
    secret = f"Lucky Bets Ltd {uuid.uuid4().hex[:8]}"
    workflow_id, run_id, sealed = await start_sealed_workflow(web_ui_stack, engine, keys, secret)
    async with httpx.AsyncClient(base_url=web_ui_stack.api_url) as http:
        staff = await dev_token(http, f"cmp-{uuid.uuid4()}", ["compliance"])

    # Without a codec session the UI's decode call is refused: it shows the input as stored, sealed.
    context = await new_context(browser, web_ui_stack)
    page = await context.new_page()
    answer = await open_workflow(page, web_ui_stack, workflow_id, run_id)
    assert answer.status == 401, await answer.text()
    await page.locator("#content").get_by_text("Codec Server could not connect").wait_for()
    await page.get_by_text(sealed).first.wait_for()
    assert secret not in await page.content()
    await context.close()

    # With one: the staff member opens the API in the browser and starts a session there.
    context = await new_context(browser, web_ui_stack)
    page = await context.new_page()
    await page.goto(web_ui_stack.api_url + "/healthz")
    status = await page.evaluate(
        "auth => fetch('/codec/session', {method: 'POST', headers: {Authorization: auth}}).then(r => r.status)",
        staff["Authorization"],
    )
    assert status == 204
    [cookie] = await context.cookies(web_ui_stack.api_url + "/codec/decode")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/codec"
    # The cookie counts only from the Web UI's origins, not from any other page (here the API's own).
    refused = await page.evaluate(
        "() => fetch('/codec/decode', {method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({payloads: []})}).then(r => r.status)"
    )
    assert refused == 403

    answer = await open_workflow(page, web_ui_stack, workflow_id, run_id)
    assert answer.status == 200, await answer.text()
    decoded = [json.loads(base64.b64decode(p["data"])) for p in (await answer.json())["payloads"]]
    assert {"merchant": secret} in decoded
    await page.get_by_text(secret).first.wait_for()
    await context.close()


async def test_the_operator_pages_links_list_the_members_workflows_in_the_web_ui(
    web_ui_stack: WebUiStack, browser: Browser, engine: AsyncEngine, keys: KeyStore
) -> None:
    """The links `GET /v1/admin/members/{id}/workflows` gives (and the operator pages show) open
    the Web UI's list filtered to that member: their workflow, and not another member's."""
    member, other = await create_member(engine, keys), await create_member(engine, keys)
    for owner in (member, other):
        await web_ui_stack.temporal.start_workflow(
            "BrowserProbeWorkflow", {}, id=user_badges_workflow_id(owner), task_queue=f"nobody-{uuid.uuid4()}"
        )
    async with httpx.AsyncClient(base_url=web_ui_stack.api_url) as http:
        staff = await dev_token(http, "ops@example.com", ["operator"])
        links = (await http.get(f"/v1/admin/members/{member}/workflows", headers=staff)).json()
    [badges] = [link for link in links["workflows"] if link["kind"] == "badges"]
    context = await browser.new_context()
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = await context.new_page()
    for url in (badges["url"], links["allWorkflowsUrl"]):
        assert url.startswith(web_ui_stack.ui_url + "/namespaces/default/workflows?query=")
        await page.goto(url)
        await page.get_by_text(user_badges_workflow_id(member)).first.wait_for()
        assert await page.get_by_text(user_badges_workflow_id(other)).count() == 0
    await context.close()
