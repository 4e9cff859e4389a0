"""The operator pages (`GET /ops`) in headless Chromium against the running system: staff sign in
and see the success metrics with their targets; an operator approves a held burst on the page and
the member's award arrives; what each staff scope may do is what the page offers; a member's token
is shown nothing and refused the data; axe-core finds no serious or critical violation."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import PHONE, screenshot
from tests.support import EventSystem, dev_token, eventually, real_time_event

PLAUSIBLE = 10  # attendance events a minute that count at once (domain/plausibility.py)


@pytest.fixture(scope="module")
async def http(pages_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=pages_url, timeout=30) as client:
        yield client


async def sign_in(context: BrowserContext, pages_url: str, sub: str, role: str) -> Page:
    """Opens /ops and signs in with a development token for `role`, as staff do locally."""
    page = await context.new_page()
    await page.goto(f"{pages_url}/ops")
    await page.get_by_label("Your name or email").fill(sub)
    await page.get_by_label("Role").select_option(role)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_text(f"Signed in as {sub}")).to_be_visible()
    return page


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    results = await Axe().run(page)
    return [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


async def test_an_operator_sees_the_success_metrics_with_targets(
    context: BrowserContext, pages_url: str, http: httpx.AsyncClient
) -> None:
    sub = f"active-{uuid.uuid4().hex[:8]}"  # an active member: the metrics have someone to count
    event = real_time_event(f"calc-{sub}", sub, "tool_usage", calculatorId="budget")
    assert (await http.post("/v1/events", json=event, headers=await dev_token(http, sub))).status_code == 202
    page = await sign_in(context, pages_url, "ops@example.com", "operator")
    metrics = page.locator("#metrics article.metric")
    await expect(metrics).to_have_count(5)
    adoption = page.locator('[data-metric="open_banking_adoption"]')
    await expect(adoption.get_by_role("heading", name="Open-banking adoption")).to_be_visible()
    await expect(adoption).to_contain_text("target > 25 % of active members")
    await expect(adoption.locator('[data-role="value"]')).to_have_text(re.compile(r"^\d+\.\d %$"))
    await expect(adoption.locator("svg[role=img]")).to_have_count(1)
    await expect(page.locator('[data-metric="behaviour_improvement"]')).to_contain_text("no target set by the seed")
    await adoption.get_by_text("By month, and how it is defined").click()
    await expect(adoption).to_contain_text("open_banking consent was in force")
    await expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    await expect(page.get_by_role("heading", name="Badge definitions")).to_be_visible()
    await expect(page.locator("#badges tbody tr").first).to_be_visible()
    await screenshot(page, "ops-metrics")
    assert await serious_violations(page) == []
    await page.set_viewport_size(PHONE)
    await screenshot(page, "ops-phone")


async def test_an_operator_approves_a_held_burst_and_the_members_page_shows_the_award(
    browser: Browser, context: BrowserContext, pages_url: str, http: httpx.AsyncClient
) -> None:
    admin = await dev_token(http, f"admin-{uuid.uuid4()}", ["admin"])
    campaign = uuid.uuid4().hex[:12]
    badge_id = f"ops-burst-{campaign}"
    rule = {
        "kind": "count",
        "eventType": "attendance",
        "target": PLAUSIBLE + 2,
        "eventDataMatch": {"campaign": campaign},
    }
    defined = await http.put(f"/v1/admin/badges/{badge_id}", json={"name": "Ten and two", "rule": rule}, headers=admin)
    assert defined.status_code == 201, defined.text
    sub = f"burst-{campaign}@example.com"
    member = await dev_token(http, sub)
    member_id = (await http.get("/v1/me", headers=member)).json()["userId"]
    scanner = await EventSystem.register(http, ["attendance"])
    for n in range(PLAUSIBLE + 2):  # the last two arrive faster than anyone attends: held
        assert (
            await scanner.post(real_time_event(f"{campaign}-{n}", sub, "attendance", campaign=campaign))
        ).status_code == 202

    operator = await dev_token(http, "ops@example.com", ["operator"])

    async def held() -> list[dict[str, Any]]:
        queue = await http.get("/v1/admin/review-queue", params={"user": member_id}, headers=operator)
        return [item for item in queue.json() if item["eventCount"] == 2]

    async def has_held() -> bool:
        return bool(await held())

    await eventually(has_held)
    review_id = (await held())[0]["reviewId"]

    # The member watches their own page (a browser of their own) while the operator decides.
    member_context = await browser.new_context(viewport=PHONE)
    member_page = await member_context.new_page()
    await member_page.goto(f"{pages_url}/app")
    await member_page.get_by_label("Your name or email").fill(sub)
    await member_page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(member_page.locator("#stream-state")).to_have_text("Live")
    earned = member_page.locator(f'#badges-earned [data-badge-id="{badge_id}"]')
    await expect(earned).to_have_count(0)

    page = await sign_in(context, pages_url, "ops@example.com", "operator")
    row = page.locator(f'tr[data-review="{review_id}"]')
    await expect(row).to_contain_text(member_id)
    await expect(row).to_contain_text("held burst")
    await screenshot(page, "ops-review-queue")
    await row.get_by_role("button", name="Approve").click()
    await expect(page.get_by_text(f"Approved: {review_id}")).to_be_visible()
    await expect(row).to_contain_text("Approved: being applied")

    async def awarded() -> bool:
        mine = (await http.get("/v1/me/badges", headers=member)).json()
        return any(badge["badgeId"] == badge_id and badge["awarded"] for badge in mine["badges"])

    await eventually(awarded)
    # Live on the member's page, without a reload.
    await expect(member_page.locator("#celebration")).to_contain_text("Badge earned: Ten and two")
    await expect(earned).to_be_visible()
    await screenshot(member_page, "ops-approval-member-page")
    await member_context.close()
    await page.locator("#reviews").get_by_role("button", name="Refresh").click()
    await expect(row).to_have_count(0)  # no longer pending
    decided = await http.get(
        "/v1/admin/review-queue", params={"user": member_id, "status": "approved"}, headers=operator
    )
    assert [(item["reviewId"], item["resolvedBy"]) for item in decided.json()] == [(review_id, "ops@example.com")]


async def test_each_staff_scope_is_offered_what_it_may_do(context: BrowserContext, pages_url: str) -> None:
    page = await sign_in(context, pages_url, "auditor@example.com", "compliance")
    await expect(page.locator("#metrics article.metric")).to_have_count(5)
    await expect(page.locator("#badges tbody tr").first).to_be_visible()
    await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    await expect(page.get_by_role("button", name="Re-evaluate", exact=False)).to_have_count(0)
    await expect(page.get_by_role("button", name="Release deferred rewards")).to_have_count(0)
    await expect(page.get_by_role("button", name="Save cap")).to_have_count(0)
    await expect(page.locator("#reviews")).to_contain_text("operators and admins decide")
    # Compliance reads the audit log (operators may not): its own staff reads are in it.
    await page.get_by_label("Who (a staff subject, member, system; empty: anyone)").fill("auditor@example.com")
    await page.get_by_label("Action (empty: any)").fill("admin.GET")
    await page.get_by_role("button", name="Show records").click()
    await expect(page.locator("#audit tbody")).to_contain_text("auditor@example.com (compliance)")
    await expect(page.locator("#audit tbody")).to_contain_text("/v1/admin/metrics/success")
    assert await serious_violations(page) == []  # with the audit form and its table

    operator = await sign_in(context, pages_url, "ops@example.com", "operator")
    await expect(operator.locator("#metrics article.metric")).to_have_count(5)
    await expect(operator.get_by_role("heading", name="Audit log")).to_have_count(0)
    await expect(operator.get_by_role("link", name="Audit log")).to_be_hidden()

    admin = await sign_in(context, pages_url, "admin@example.com", "admin")
    await expect(admin.get_by_role("button", name="Release deferred rewards")).to_be_visible()
    scope = f"ops-cap-{uuid.uuid4().hex[:8]}"  # a badge of its own: no other test's rewards are capped
    await admin.get_by_label("Badge id (* for all rewards)").fill(scope)
    await admin.get_by_label("Kind").select_option("money")
    await admin.get_by_label("Monthly cap (points, or pounds for money)").fill("250")
    await admin.get_by_role("button", name="Save cap").click()
    await expect(admin.locator("#rewards tbody")).to_contain_text(scope)
    await expect(admin.locator("#rewards tbody tr", has_text=scope)).to_contain_text("£250.00")
    assert await serious_violations(admin) == []  # with every action and form an admin has
    await screenshot(admin, "ops-admin")
    reevaluate = admin.locator("#badges").get_by_role("button", name="Re-evaluate").first
    await expect(reevaluate).to_be_visible()


async def test_a_member_token_sees_nothing_and_is_refused_the_data(
    context: BrowserContext, pages_url: str, http: httpx.AsyncClient
) -> None:
    member = (await dev_token(http, f"member-{uuid.uuid4()}"))["Authorization"].removeprefix("Bearer ")
    page = await context.new_page()
    await page.goto(f"{pages_url}/ops")
    await page.get_by_label("Bearer token from your identity provider").fill(member)
    await page.get_by_role("button", name="Use this token").click()
    await expect(page.get_by_role("heading", name="Staff only")).to_be_visible()
    await expect(page.locator("#console")).to_be_hidden()
    await expect(page.locator("#metrics")).to_have_count(0)
    # Whatever a page script asks with this token, the API refuses it.
    statuses = await page.evaluate(
        """async (token) => {
            const paths = ["/v1/admin/metrics/success", "/v1/admin/review-queue", "/v1/admin/reward-budgets",
                           "/v1/admin/webhook-deliveries", "/v1/admin/badges", "/v1/admin/metrics"];
            const headers = {Authorization: `Bearer ${token}`};
            const answers = await Promise.all(paths.map((p) => fetch(p, {headers})));
            return answers.map((a) => a.status);
        }""",
        member,
    )
    assert statuses == [403] * 6
    await screenshot(page, "ops-member-refused")
    assert await serious_violations(page) == []


async def test_a_members_workflows_link_into_the_web_ui(
    context: BrowserContext, pages_url: str, http: httpx.AsyncClient
) -> None:
    member_id = (await http.get("/v1/me", headers=await dev_token(http, f"m-{uuid.uuid4()}"))).json()["userId"]
    page = await sign_in(context, pages_url, "ops@example.com", "operator")
    await page.get_by_label("Member's internal id").fill(member_id)
    await page.get_by_role("button", name="Show workflows").click()
    link = page.get_by_role("link", name=f"user/{member_id}/badges")
    await expect(link).to_have_attribute(
        "href", re.compile(r"^http://localhost:8233/namespaces/default/workflows\?query=")
    )
    await page.get_by_label("Member's internal id").fill("not-an-id")
    await page.get_by_role("button", name="Show workflows").click()
    await expect(page.get_by_text("That is not an internal id (a UUID).")).to_be_visible()
    await screenshot(page, "ops-workflows")
