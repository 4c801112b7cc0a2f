"""Browser tests: Playwright driving Debian's chromium against a live server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests import pg
from tests.conftest import STAFF_PASSWORD, TEST_SECRET_KEY
from tests.live import LiveServer, live_server

CHROMIUM = Path("/usr/bin/chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            if not CHROMIUM.exists() and os.environ.get("CI") != "true":
                item.add_marker(pytest.mark.skip(reason="Debian's chromium is not installed"))


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> object:
    # The browser is launched once for the run and Playwright's objects belong to the loop
    # that made them, so every browser test runs on the session's loop.
    module = yield
    module.add_marker(pytest.mark.asyncio(loop_scope="session"))
    return module


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One chromium for the whole run: launching one per test cost seconds each. Tests share
    nothing through it: each gets contexts of its own (cookies, storage, cache)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


async def new_context(browser: Browser, **options: Any) -> BrowserContext:
    context = await browser.new_context(**options)
    context.set_default_timeout(10_000)
    # a navigation may wait on a login's password hash, slow by design and slower still
    # on a busy machine (CI runs the suite beside other work)
    context.set_default_navigation_timeout(30_000)
    return context


@asynccontextmanager
async def contexts_closed_after(browser: Browser) -> AsyncIterator[None]:
    """Close every context opened meanwhile, the test's own included, so none outlives it."""
    assert browser.is_connected(), "chromium went away during an earlier test"
    before = set(browser.contexts)
    try:
        yield
    finally:
        for context in browser.contexts:
            if context not in before:
                await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page in a context of its own."""
    async with contexts_closed_after(browser):
        context = await new_context(browser)
        yield await context.new_page()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(database_url, TEST_SECRET_KEY, tmp_path) as running:
        yield running


async def _create_staff(database_url: str, username: str, role: str) -> None:
    from admin.staff import table as staff

    conn = await asyncpg.connect(database_url)
    try:
        await staff.create(conn, username, STAFF_PASSWORD, role)
    finally:
        await conn.close()


@pytest.fixture
def e2e_admin(database_url: str) -> tuple[str, str]:
    """(username, password) of an admin in the live server's database."""
    pg.run(_create_staff(database_url, "e2e-admin", "admin"))
    return "e2e-admin", STAFF_PASSWORD


async def log_in_page(page: Page, base_url: str, username: str, password: str) -> None:
    """Log `page` in through the login form; returns once the dashboard is shown."""
    await page.goto(base_url + "/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(base_url + "/")


@pytest_asyncio.fixture(loop_scope="session")
async def logged_in_page(page: Page, server: LiveServer, e2e_admin: tuple[str, str]) -> Page:
    """A Playwright page logged in as an admin on the live server."""
    await log_in_page(page, server.url, *e2e_admin)
    return page
