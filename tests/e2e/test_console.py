"""Pages load without a console error: nothing the CSP blocks, no failing script."""

from __future__ import annotations

import pytest
from playwright.async_api import ConsoleMessage, Page

from tests.live import LiveServer

PAGES = ["/", "/users", "/users/new", "/orders", "/staff", "/audit", "/account", "/users/import"]


@pytest.mark.parametrize("path", PAGES)
async def test_page_loads_without_console_errors(
    logged_in_page: Page, server: LiveServer, path: str
) -> None:
    errors: list[str] = []

    def collect(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    logged_in_page.on("console", collect)
    await logged_in_page.goto(server.url + path)
    await logged_in_page.wait_for_load_state("networkidle")
    # a boosted navigation goes through htmx, which is where its indicator style was injected
    await logged_in_page.locator("nav.nav a[href='/users']").click()
    await logged_in_page.wait_for_load_state("networkidle")
    assert errors == []


async def test_indicator_is_hidden_until_a_request_runs(
    logged_in_page: Page, server: LiveServer
) -> None:
    await logged_in_page.goto(server.url + "/users")
    indicator = logged_in_page.locator("#list-loading")
    assert await indicator.evaluate("el => getComputedStyle(el).opacity") == "0"
    assert await logged_in_page.evaluate("htmx.config.includeIndicatorStyles") is False
