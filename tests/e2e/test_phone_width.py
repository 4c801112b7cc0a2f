"""Pages fit a 390 px phone: nothing wider than the viewport (wide tables scroll in a box)."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.live import LiveServer

PAGES = ["/account", "/users/import", "/orders/import", "/", "/users", "/orders", "/users/new"]


@pytest.mark.parametrize("path", PAGES)
async def test_page_is_no_wider_than_a_phone(
    logged_in_page: Page, server: LiveServer, path: str
) -> None:
    await logged_in_page.set_viewport_size({"width": 390, "height": 844})
    await logged_in_page.goto(server.url + path)
    width = await logged_in_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{path} is {width} px wide"
