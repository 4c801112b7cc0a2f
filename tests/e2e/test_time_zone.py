"""In a real browser whose zone is Asia/Kolkata: one click on My account makes it the
panel's zone for this member, without any inline script."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Page

from tests.e2e.conftest import contexts_closed_after, log_in_page, new_context
from tests.live import LiveServer


@pytest_asyncio.fixture(loop_scope="session")
async def kolkata_page(browser: Browser) -> AsyncIterator[Page]:
    async with contexts_closed_after(browser):
        context = await new_context(browser, timezone_id="Asia/Kolkata")
        yield await context.new_page()


async def test_use_my_browsers_zone(
    kolkata_page: Page, server: LiveServer, e2e_admin: tuple[str, str], database_url: str
):
    page = kolkata_page
    errors: list[str] = []

    def collect(message: ConsoleMessage) -> None:
        # the panel has no favicon; a browser that asks for one gets a 404
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            errors.append(message.text)

    page.on("console", collect)
    await log_in_page(page, server.url, *e2e_admin)
    # reached by a boosted navigation, as people do: the button must appear all the same
    await page.locator(".account a[href='/account']").click()
    await page.wait_for_url(server.url + "/account")
    button = page.locator("[data-use-browser-zone]")
    await button.wait_for(state="visible")
    # chromium's ICU still names the zone by its old name, which the tz database keeps too
    zone = await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert zone in ("Asia/Kolkata", "Asia/Calcutta")
    assert await button.inner_text() == f"Use my browser's zone ({zone})"
    assert await page.locator("#time_zone").input_value() == "UTC"

    await button.click()
    await page.locator("#flashes").get_by_text(f"Times are now shown in {zone}.").wait_for()
    assert await page.locator("#time_zone").input_value() == zone
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval(
            "SELECT time_zone FROM staff WHERE username = $1", e2e_admin[0]
        )
    finally:
        await conn.close()
    assert stored == zone

    await page.goto(server.url + "/audit")
    first_time = page.locator("#audit-table tbody tr").first.locator("time")
    assert (await first_time.inner_text()).endswith(" IST")
    assert errors == []
