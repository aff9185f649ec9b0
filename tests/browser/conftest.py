"""A real headless Chromium on the sandbox page, as a person trying Pulser opens it.

The browser is the system's (Debian's `chromium`; `.ci/run` installs it where it can), driven by
Playwright's Python client: nothing is downloaded. Without one, these tests skip and say why.
One browser serves the whole session and one `pulser run` (no Slack tokens: it starts its own
sandbox, with alice the admin and bob the member) serves each test module; every test gets a
fresh browser context (its own cookies, so it starts as alice on #ops).
"""

from __future__ import annotations

import re
import shutil
from typing import AsyncIterator

import httpx
import pytest

from bot.metrics import Metrics
from bot.runtime import Runtime
from tests import webhook_senders as send
from tests.conftest import _create_database, _drop_database, make_settings, with_database

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Slack formatting a person must never see raw: *bold*, :emoji:, <!date^…>, <@U…>, <#C…>, <!here>.
RAW_MARKUP = re.compile(r"\*[^\s*][^*\n]*?[^\s*]\*|:[a-z][a-z0-9_+-]*:|<!date\^|<@[UW]|<#C|<!(here|channel|everyone)")


def system_chromium() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator:
    async_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed (the `test` extra)")
    executable = system_chromium()
    if executable is None:
        pytest.skip(f"no Chromium on this machine (looked for {', '.join(BROWSERS)}): apt-get install chromium")
    async with async_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="module")
async def try_out(pg_server, template_database, admin) -> AsyncIterator[Runtime]:
    """`pulser run` with no Slack tokens (PULSER_SANDBOX=1: a database of its own is given), on
    free ports, with a webhook token so incidents can be sent in."""
    name = await _create_database(admin, template_database)
    settings = make_settings(
        DATABASE_URL=with_database(pg_server, name),
        PULSER_SANDBOX="1",
        PULSER_SANDBOX_PORT="0",
        ALERT_UPDATE_DEBOUNCE_SECONDS="0",
        **send.SECRETS_ENV,
    )
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    await runtime.start()
    try:
        await runtime.wait_connected(timeout=30)
        await runtime.sandbox.wait_for_connection(timeout=30)
        yield runtime
    finally:
        await runtime.stop()
        await _drop_database(admin, name)


@pytest.fixture
async def page(browser, try_out) -> AsyncIterator:
    """A new browser context on the sandbox page: a person who has not been here before."""
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(30_000)
    tab = await context.new_page()
    await tab.goto(try_out.sandbox.base_url + "/")
    try:
        yield tab
    finally:
        await context.close()


@pytest.fixture
async def sidecar(try_out) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{try_out.http_port}", timeout=10) as client:
        yield client


async def visible_text(page) -> str:
    """What a person reads on the page now (the rendered text, not the HTML)."""
    return await page.inner_text("body")


async def run_command(page, line: str) -> None:
    """Type a slash command into the message box and send it, as in Slack."""
    box = page.locator("#composer input[name=message]")
    await box.fill(line)
    async with page.expect_navigation():
        await box.press("Enter")


def assert_rendered(text: str) -> None:
    """No Slack formatting left raw in what a person reads."""
    raw = RAW_MARKUP.search(text)
    assert raw is None, f"raw Slack formatting on the page: {raw.group(0)!r} in …{text[max(0, raw.start() - 80):raw.end() + 80]}…"
