"""In a real browser: log in, be refused a wrong password with a message, log out."""

from __future__ import annotations

from playwright.async_api import Page

from tests.e2e.waits import url_has
from tests.live import LiveServer


async def test_wrong_password_login_and_logout(page: Page, server: LiveServer, e2e_admin):
    username, password = e2e_admin
    await page.goto(server.url + "/staff")
    await url_has(page, "/login")
    await page.fill("#username", username)
    await page.fill("#password", "not the password")
    await page.click("button[type=submit]")
    alert = page.locator("#login-form [role=alert]")
    await alert.wait_for()
    assert await alert.inner_text() == "Wrong username or password."
    await url_has(page, "/login")
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(server.url + "/staff")
    assert await page.locator("h1").inner_text() == "Staff"
    assert await page.locator(f'tr[data-username="{username}"]').count() == 1

    await page.click("text=Log out")
    await page.wait_for_url(server.url + "/login")
    assert "You have been logged out." in await page.locator("#flashes").inner_text()
    await page.goto(server.url + "/account")
    await url_has(page, "/login")
