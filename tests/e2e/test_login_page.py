from playwright.async_api import Page

from tests.e2e.waits import url_has
from tests.live import LiveServer


async def test_panel_opens_on_the_login_page(page: Page, server: LiveServer):
    await page.goto(server.url + "/")
    await url_has(page, "/login")
    assert await page.locator("h1").inner_text() == "Log in"
    assert await page.locator("meta[name=csrf-token]").get_attribute("content")


async def test_admin_logs_in_and_sees_the_dashboard(logged_in_page: Page):
    assert await logged_in_page.locator("h1").inner_text() == "Dashboard"
