"""The member dashboard (`GET /app`) in headless Chromium against the running system: what a
member sees and does, checked on the page itself (text, live updates), not only that it loads."""

from __future__ import annotations

import uuid

from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import screenshot


async def sign_in(context: BrowserContext, pages_url: str, sub: str) -> Page:
    """Opens /app and signs in with a development token, as a member does locally."""
    page = await context.new_page()
    await page.goto(f"{pages_url}/app")
    await page.get_by_label("Your name or email").fill(sub)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#stream-state")).to_have_text("Live")
    return page


async def test_a_member_signs_in_and_the_stream_goes_live(context: BrowserContext, pages_url: str) -> None:
    sub = f"page-{uuid.uuid4().hex[:8]}@example.com"
    page = await sign_in(context, pages_url, sub)
    await expect(page.get_by_text(f"Signed in as {sub}")).to_be_visible()
    await screenshot(page, "member-signed-in")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("Your name or email")).to_be_visible()
