"""The Temporal Web UI in headless Chromium, against the real API, dev server and PostgreSQL.

Chromium is Debian's `chromium` package (`.ci/run` installs it when missing), driven by the
`playwright` wheel with `executable_path`: nothing is downloaded at run time. Without it the
browser tests skip, except under CI (`CI=true`), where a missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from badges.config import Settings
from tests.conftest import BIN
from tests.support import free_port, running_api

# Screenshots of the pages, kept out of git (.gitignore): look at them after a run.
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"
PAGE_TIMEOUT_MS = 20_000
PHONE = {"width": 390, "height": 844}


@dataclass(frozen=True)
class WebUiStack:
    api_url: str  # http://127.0.0.1:<port>: the API, whose /codec the UI calls
    ui_url: str  # http://127.0.0.1:<port>: the Temporal Web UI
    temporal: Client  # with the project's encrypting data converter


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("chromium is missing under CI: .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium): browser tests skipped")
    return path


@pytest.fixture(autouse=True)
def _needs_chromium(chromium_path: str) -> None:
    """Skip (or fail, under CI) before any server starts."""


@pytest.fixture(scope="module")
async def web_ui_stack(settings: Settings, data_converter: DataConverter) -> AsyncIterator[WebUiStack]:
    """The API first (its Temporal client connects lazily), then a dev server with the Web UI whose
    codec endpoint is that API's `/codec`, as `make dev` runs them. Only the UI's origin gets CORS."""
    temporal_port, ui_port = free_port(), free_port()
    ui_url = f"http://127.0.0.1:{ui_port}"
    api_settings = settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{temporal_port}",
            "codec_cors_origins": ui_url,
            "temporal_ui_url": ui_url,
        }
    )
    async with running_api(api_settings) as api_url:
        env = await WorkflowEnvironment.start_local(
            data_converter=data_converter,
            port=temporal_port,
            ui=True,
            ui_port=ui_port,
            dev_server_existing_path=str(BIN / "temporal"),
            dev_server_log_level="error",
            dev_server_extra_args=["--ui-codec-endpoint", f"{api_url}/codec", "--ui-disable-news-fetch"],
        )
        try:
            yield WebUiStack(api_url=api_url, ui_url=ui_url, temporal=env.client)
        finally:
            await env.shutdown()


@pytest.fixture(scope="module")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(scope="module")
async def pages_url(api_url: str, worker: None) -> str:
    """The API that serves the pages (`/app`, `/ops`), with a worker behind it: the running system of
    tests/conftest.py (session-scoped: one for the integration and browser tests alike)."""
    return api_url


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile per test (its own sessionStorage: signed out)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield context
    finally:
        await context.close()


async def screenshot(page: Page, name: str, *sections: str) -> Path:
    """A full-page PNG under .artifacts/screenshots/ (git-ignored), and one of each element named
    by a CSS selector in `sections` (`{name}-{selector without #}.png`), readable at full size."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    for selector in sections:
        await page.locator(selector).screenshot(path=str(SCREENSHOTS / f"{name}-{selector.lstrip('#.')}.png"))
    return path
