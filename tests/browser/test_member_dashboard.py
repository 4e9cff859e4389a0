"""The member dashboard (`GET /app`) in headless Chromium against the running system (API, worker,
Temporal dev server, PostgreSQL, sandbox bank): what a member sees and does, checked on the page
itself (text, live updates without a reload), not only that it loads. Screenshots of the main views
go to .artifacts/screenshots/."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Dialog, Page, WebSocket, expect
from psycopg_pool import AsyncConnectionPool

from badges.api.auth import issue_token
from badges.config import Settings
from badges.db.insights import store_insights
from badges.db.keys import KeyStore
from badges.db.peers import ReleasedGroup
from tests.browser.conftest import PAGE_TIMEOUT_MS, PHONE, SCREENSHOTS, screenshot
from tests.integration.test_comparisons import ERRORS, RATES, keep_inputs, write_release
from tests.integration.test_open_banking import access_token, fire
from tests.sandbox.conftest import Sandbox

SYNC_TIMEOUT_MS = 60_000  # a linked bank's history synced and evaluated


def new_member() -> str:
    return f"page-{uuid.uuid4().hex[:10]}@example.com"


async def sign_in(context: BrowserContext, pages_url: str, sub: str) -> Page:
    """Opens /app and signs in with a development token, as a member does locally."""
    page = await context.new_page()
    await page.goto(f"{pages_url}/app")
    await page.get_by_label("Your name or email").fill(sub)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#stream-state")).to_have_text("Live")
    return page


async def serious_violations(page: Page) -> list[str]:
    results = await Axe().run(page)
    found = results.response["violations"]
    return [
        f"{item['id']} ({item['impact']}): {item['help']} at {[node['target'] for node in item['nodes']][:3]}"
        for item in found
        if item["impact"] in ("serious", "critical")
    ]


async def test_a_member_signs_in_sees_badges_and_the_stream_carries_no_token_in_its_address(
    context: BrowserContext, pages_url: str
) -> None:
    sockets: list[WebSocket] = []
    page = await context.new_page()
    page.on("websocket", lambda socket: sockets.append(socket))
    await page.goto(f"{pages_url}/app")
    assert await serious_violations(page) == []
    await screenshot(page, "member-sign-in")
    sub = new_member()
    await page.get_by_label("Your name or email").fill(sub)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#stream-state")).to_have_text("Live")
    await expect(page.get_by_text(f"Signed in as {sub}")).to_be_visible()

    explorer = page.locator('#badges-progress [data-badge-id="calculator-explorer"]')
    await expect(explorer).to_contain_text("Calculator explorer")
    await expect(explorer).to_contain_text("0 of 3 · 3 to go")
    civic = page.locator('[data-badge-id="civic-voice"]')
    await expect(civic).to_contain_text("bronze")
    await expect(civic).to_contain_text("Reward: 200 points")
    # Without insights consent the page says what to turn on, not an error.
    await expect(page.locator("#health")).to_contain_text("This needs “Insights from your bank data” to be on.")
    await expect(page.locator("#earned-none, #badges-earned")).to_contain_text("None yet")

    # The stream is the WebSocket, the token offered as its subprotocol: nothing secret in the URL.
    token = await page.evaluate("sessionStorage.getItem('badges.token')")
    [socket] = sockets
    assert socket.url.endswith("/v1/me/ws") and token not in socket.url and "access_token" not in socket.url
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("Your name or email")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('badges.token')") is None


async def test_three_calculator_uses_award_the_badge_live_without_a_reload(
    context: BrowserContext, pages_url: str
) -> None:
    page = await sign_in(context, pages_url, new_member())
    await page.evaluate("window.notReloaded = true")
    explorer = page.locator('[data-badge-id="calculator-explorer"]')
    form = page.locator("#savings-goal-form")
    await form.get_by_label("Goal amount").fill("1200")
    for use in (1, 2):
        if use == 1:
            await form.get_by_role("button", name="Calculate").click()
        else:  # by keyboard: Enter in a field submits its form
            await form.get_by_label("Months to get there").press("Enter")
        await expect(form.locator("#savings-goal-result")).to_contain_text("Put aside £100.00 a month for 12 months")
        await expect(explorer).to_contain_text(f"{use} of 3")
    budget = page.locator("#budget-form")
    await budget.get_by_label("Monthly income after tax").fill("2000")
    await budget.get_by_label("Needs: rent, bills, food, transport").fill("1000")
    await budget.get_by_label("Wants: eating out, shopping, fun").fill("600")
    await budget.get_by_role("button", name="Calculate").click()
    await expect(budget.locator("#budget-result")).to_contain_text("leaves £400.00 (20 %) to save")

    celebration = page.locator("#celebration")
    await expect(celebration).to_contain_text("Badge earned: Calculator explorer")
    await expect(page.locator('#badges-earned [data-badge-id="calculator-explorer"]')).to_be_visible()
    # Two calculators used: the distinct-calculators badge moved too, live.
    await expect(page.locator('[data-badge-id="calculator-collector"]')).to_contain_text("2 of 5")
    assert await page.evaluate("window.notReloaded") is True
    await screenshot(page, "member-award", "#celebration", "#badges", "#tools")

    # Add to wallet: the award as a signed Open Badges credential, downloaded as a file.
    card = page.locator('#badges-earned [data-badge-id="calculator-explorer"]')
    async with page.expect_download() as waiting:
        await card.get_by_role("button", name="Add to wallet").click()
    saved = await waiting.value
    assert saved.suggested_filename.endswith(".jwt")
    jwt = Path(await saved.path()).read_text()
    _, claims_part, _ = jwt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(claims_part + "=" * (-len(claims_part) % 4)))
    assert "OpenBadgeCredential" in json.dumps(claims) and "calculator-explorer" in json.dumps(claims)
    await expect(card).to_contain_text("a signed credential anyone can check")


async def test_a_member_links_a_bank_corrects_a_category_adds_a_goal_relinks_and_revoking_deletes_the_bank_data(
    context: BrowserContext, pages_url: str, sandbox_bank: Sandbox, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    page = await sign_in(context, pages_url, new_member())
    privacy = page.locator("#privacy")
    for title in ("Linked bank data", "Insights from your bank data"):
        await privacy.get_by_role("button", name=f"Turn on {title}").click()
        await expect(privacy.locator(".consent", has_text=title)).to_contain_text("On until")

    banks = page.locator("#banks")
    await banks.get_by_label("Sandbox person").select_option("user_improver")
    await banks.get_by_role("button", name="Link this bank").click()
    await expect(banks.locator("#bank-list")).to_contain_text("Up to date", timeout=SYNC_TIMEOUT_MS)
    await expect(banks.locator("#bank-list")).to_contain_text("Checking")

    # Transactions with their categories, then the figures the evaluation makes of them.
    rows = page.locator("#transactions-table tbody tr")
    await expect(rows.first).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    await expect(page.locator("#health-score")).to_have_text(re.compile(r"^\d+ / 100$"), timeout=SYNC_TIMEOUT_MS)
    await expect(page.locator("#health-band")).to_have_text(re.compile("^(healthy|coping|vulnerable)$"))
    await expect(page.locator("#trend-table")).to_contain_text("Month on month")
    await expect(page.locator("#trend-table")).to_contain_text("Year on year")
    await expect(page.locator("#trend-table tbody tr", has_text="Spending")).to_have_count(1)
    await expect(page.locator("#trends svg[role=img]")).to_be_visible()
    await expect(page.locator("#spending svg[role=img]")).to_be_visible()
    # The sandbox's history is a year long: no complete month has its year-before yet, and the page says so.
    await expect(page.locator("#year-on-year")).to_contain_text("once your history reaches back a year and a month")
    await expect(page.locator("#spending")).to_contain_text("Rent or mortgage")
    await expect(page.locator("#savings-rate-value")).to_have_text(re.compile(r"^\d+\.\d %$"))
    assert await serious_violations(page) == []
    await screenshot(page, "member-money", "#overview", "#badges", "#money", "#banks")

    # A correction: the row says the member set it, and it is still so after a reload.
    select = rows.first.get_by_role("combobox")
    select_id = await select.get_attribute("id")
    corrected = "shopping" if await select.input_value() != "shopping" else "entertainment"
    await select.select_option(corrected)
    await expect(rows.first).to_contain_text("set by you")
    await page.reload()
    await expect(page.locator(f"[id='{select_id}']")).to_have_value(corrected)

    goals = page.locator("#goals")
    await goals.get_by_label("Name").fill("Holiday")
    await goals.get_by_label("Amount to save").fill("1500")
    await goals.get_by_role("button", name="Add goal").click()
    await expect(goals.locator("#goal-list")).to_contain_text("Holiday")
    await expect(goals.locator("#goal-list")).to_contain_text("1,500.00")
    # The evaluation the new goal asked for measures it; the page shows it without a reload.
    await expect(goals.locator("#goal-list")).to_contain_text("saved so far", timeout=SYNC_TIMEOUT_MS)
    await screenshot(page, "member-goals-privacy", "#goals", "#compare", "#tools", "#privacy")

    # The bank asks the member to sign in again: the page says so (live) and re-links in place.
    bank = banks.locator("#bank-list > li").first
    access = await access_token(pool, keys, str(await bank.get_attribute("data-connection-id")))
    await sandbox_bank.custom("/sandbox/item/reset_login", access_token=access)
    await fire(sandbox_bank, access)
    await expect(bank).to_contain_text("Your bank asks you to sign in again", timeout=SYNC_TIMEOUT_MS)
    await expect(page.locator("#insights")).to_contain_text(
        "A linked bank is now: your bank asks you to sign in again."
    )
    await screenshot(page, "member-relink", "#banks")
    await banks.get_by_role("button", name="Re-link First Platypus Bank").click()
    await expect(banks.locator("#bank-list > li").first).to_contain_text("Up to date", timeout=SYNC_TIMEOUT_MS)

    # Turning open banking off deletes the linked bank and its transactions: the page shows them gone.
    page.once("dialog", accept)
    await page.locator("#privacy").get_by_role("button", name="Turn off Linked bank data").click()
    await expect(privacy.locator(".consent", has_text="Linked bank data")).to_contain_text("Off")
    await expect(banks.locator("#bank-list")).to_have_count(0)
    await expect(banks).to_contain_text("Linked bank data is off, so nothing from your bank is held.")
    await expect(page.locator("#transactions-table")).to_have_count(0)


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


async def test_at_phone_width_the_page_fits_the_screen(browser: Browser, pages_url: str) -> None:
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        page = await sign_in(context, pages_url, new_member())
        await expect(page.locator('[data-badge-id="calculator-explorer"]')).to_be_visible()
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert await serious_violations(page) == []
        await page.screenshot(path=str(SCREENSHOTS / "member-phone-first-screen.png"))
        await screenshot(page, "member-phone", "#overview", "#badges")
    finally:
        await context.close()


async def test_when_the_token_expires_the_stream_ends_and_the_page_asks_to_sign_in_again(
    context: BrowserContext, pages_url: str, system_settings: Settings
) -> None:
    short = issue_token(system_settings, new_member(), ["user"], ttl=10)
    await context.add_init_script(f"sessionStorage.setItem('badges.token', {json.dumps(short)})")
    page = await context.new_page()
    await page.goto(f"{pages_url}/app")
    await expect(page.locator("#stream-state")).to_have_text("Live")
    # Closed by the server at the token's expiry (1008): no reconnecting with a dead token.
    await expect(page.get_by_label("Your name or email")).to_be_visible(timeout=20_000)


async def test_comparisons_say_the_improvement_first_then_the_standing_with_its_range_and_the_privacy_note(
    context: BrowserContext, pages_url: str, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    page = await sign_in(context, pages_url, new_member())
    compare = page.locator("#compare")
    await expect(compare).to_contain_text("This needs “Private comparison with people like you” to be on.")
    title = "Private comparison with people like you"
    await page.locator("#privacy").get_by_role("button", name=f"Turn on {title}").click()
    await expect(page.locator("#privacy .consent", has_text=title)).to_contain_text("On until")
    await expect(compare).to_contain_text("None of your figures are kept for comparison yet.")
    await expect(compare).to_contain_text("Keep “Insights from your bank data” consent and a linked bank")

    # The member's kept figures and a release with their groups, as test_comparisons writes them.
    user_id = uuid.UUID(await page.evaluate(ME_SCRIPT))
    await keep_inputs(pool, user_id)
    document = {
        "months": [
            {"month": "2026-09-01", "complete": True, "savingsRate": 0.12, "spendingByCategory": {}},
            {"month": "2026-10-01", "complete": True, "savingsRate": 0.2, "spendingByCategory": {}},
        ]
    }
    assert await store_insights(pool, keys, user_id, 1, datetime.now(UTC), document)
    await write_release(
        pool,
        [ReleasedGroup("postcode", "area", "SW", 1_200, {**RATES, **ERRORS})],
        ["postcode", "dependants"],
    )
    await page.reload()
    item = compare.locator(".comparison-list > li").first
    await expect(item.locator("p").first).to_have_text("Your savings rate improved since September 2026.")
    await item.get_by_text("Where you stand by where you live: savings rate").click()
    await expect(item).to_contain_text("That puts you around the 72nd percentile")
    await expect(item).to_contain_text("somewhere between the 59th and the 86th")
    await expect(item).to_contain_text("Compared with about 1,200 people in SW (SW1A alone is too small a group")
    await expect(compare).to_contain_text("By family size:")
    await expect(compare).to_contain_text("the About you form in Privacy")

    # That form: demographics, held only while their consent is on.
    about = "About you (for peer groups)"
    await page.locator("#privacy").get_by_role("button", name=f"Turn on {about}").click()
    form = page.locator("#about-you-form")
    await form.get_by_label("Postcode district").fill("sw1a")
    await form.get_by_label("Age range").select_option("25-34")
    await form.get_by_role("button", name="Save").click()
    await expect(form).to_contain_text("Saved")
    await page.reload()
    await expect(page.locator("#about-you-form").get_by_label("Postcode district")).to_have_value("SW1A")
    await expect(compare.locator(".privacy-note")).to_contain_text("differential privacy (ε = 0.001")
    await screenshot(page, "member-comparisons", "#compare")


# The member's internal id, as the page's own session asks for it.
ME_SCRIPT = """
    fetch("/v1/me", {headers: {Authorization: `Bearer ${sessionStorage.getItem("badges.token")}`}})
        .then((answer) => answer.json()).then((me) => me.userId)
"""


async def test_a_member_downloads_their_data_then_deletes_their_account_after_the_warning(
    context: BrowserContext, pages_url: str
) -> None:
    sub = new_member()
    page = await sign_in(context, pages_url, sub)
    privacy = page.locator("#privacy")
    async with page.expect_download() as downloading:
        await privacy.get_by_role("button", name="Download my data").click()
    download = await downloading.value
    assert download.suggested_filename == "badges-export.json"
    exported = json.loads((await download.path()).read_text())
    assert "sections" in exported and exported["userId"]
    await expect(privacy.locator("#export-status")).to_have_text("Your export has been downloaded.")

    form = page.locator("#delete-form")
    await expect(form).to_contain_text("This cannot be undone.")
    await form.get_by_role("button", name="Delete my account for good").click()
    await expect(form).to_contain_text("Type DELETE in capitals to confirm.")  # nothing happened yet
    await form.get_by_label("Type DELETE to confirm").fill("DELETE")
    await form.get_by_role("button", name="Delete my account for good").click()
    await expect(page.locator("#sign-in")).to_contain_text(f"The account of {sub} has been deleted (reference ")
    await screenshot(page, "member-deleted")
    # The name is refused for good: signing in again is told so, and goes no further.
    await page.get_by_label("Your name or email").fill(sub)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#sign-in")).to_contain_text("This membership has been erased")
    await expect(page.locator("#dashboard")).to_be_hidden()


def two_years_of_figures() -> dict[str, Any]:
    """An evaluation's findings over 24 complete months (as `member_insights` keeps them): spending
    down by a tenth on the year before, so each month has its year-before to compare with."""
    months, spending = [], []
    for index in range(24):
        year, month = divmod(index, 12)
        first = f"{2024 + year}-{month + 1:02d}-01"
        spent = 200_000 if year == 0 else 180_000
        months.append(
            {
                "month": first,
                "complete": True,
                "incomeMinor": 300_000,
                "spendingMinor": spent,
                "savingsMinor": 300_000 - spent,
                "savingsRate": (300_000 - spent) / 300_000,
                "spendingByCategory": {"groceries": spent - 150_000, "rent_mortgage": 150_000},
            }
        )
        spending.append({"month": first, "value": spent, "monthOnMonth": 0.0, "yearOnYear": -0.1 if year else None})
    health = {
        "score": 82,
        "band": "healthy",
        "monthsRead": 12,
        "components": [
            {
                "indicator": "long_term_savings",
                "label": "Sufficient long-term savings",
                "observed": True,
                "score": 100,
                "weight": 0.5,
                "measure": 0.4,
                "reason": "You put aside 40% of your income.",
            },
            {
                "indicator": "manageable_debt",
                "label": "Manageable debt",
                "observed": True,
                "score": 64,
                "weight": 0.5,
                "measure": 0.1,
                "reason": "Debt repayments took 10% of your income.",
            },
            {
                "indicator": "credit_score",
                "label": "Prime credit score",
                "observed": False,
                "score": None,
                "weight": 0.0,
                "measure": None,
                "reason": "Held by credit reference agencies.",
            },
        ],
    }
    return {"health": health, "months": months, "trends": {"spending_minor": spending}}


async def test_the_money_charts_say_month_on_month_and_year_on_year_from_the_figures_kept(
    context: BrowserContext, pages_url: str, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    page = await sign_in(context, pages_url, new_member())
    title = "Insights from your bank data"
    await page.locator("#privacy").get_by_role("button", name=f"Turn on {title}").click()
    await expect(page.locator("#privacy .consent", has_text=title)).to_contain_text("On until")
    user_id = uuid.UUID(await page.evaluate(ME_SCRIPT))
    # Ahead of any evaluation the consent starts (theirs are numbered by time in microseconds x 1000).
    assert await store_insights(pool, keys, user_id, 9 * 10**18, datetime.now(UTC), two_years_of_figures())
    await page.reload()

    await expect(page.locator("#health-score")).to_have_text("82 / 100")
    await expect(page.locator("#health-band")).to_have_text("healthy")
    # The strongest part first, then the next step; the parts a bank cannot see said as such.
    await expect(page.locator("#health")).to_contain_text("Going well: sufficient long-term savings.")
    await expect(page.locator("#health")).to_contain_text("Next step: manageable debt.")
    await expect(page.locator("#health")).to_contain_text("Prime credit score (not counted)")
    await expect(page.locator("#savings-rate-value")).to_have_text("40.0 %")
    await expect(page.locator("#trend-table tbody tr", has_text="Spending")).to_contain_text("no change")
    await expect(page.locator("#trend-table tbody tr", has_text="Spending")).to_contain_text("down 10 % (better)")
    year = page.locator("#year-on-year svg[role=img]")
    await expect(year.locator("title")).to_have_text("Spending by month, against the same month a year before")
    # The description carries the figures: Jan 2025 at 1,800.00 against Jan 2024's 2,000.00.
    await expect(year.locator("desc")).to_contain_text("Spending this year: Jan 2025 £1,800.00")
    await expect(year.locator("desc")).to_contain_text("A year before: Jan 2025 £2,000.00")
    await expect(page.locator("#trends svg[role=img] path.chart-line")).to_have_count(3)
    await expect(page.locator("#spending")).to_contain_text("Groceries")
    await screenshot(page, "member-charts", "#overview", "#money")
