"""Browser: active search as you type, inline edit (Enter saves, Esc cancels), conflict view."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.e2e.shared import fetchval as _sql
from tests.e2e.shared import seed_users
from tests.e2e.waits import url_has
from tests.live import LiveServer


async def test_active_search_updates_table_and_url(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    await seed_users(database_url)
    await page.goto(server.url + "/users")
    await expect(page.locator("#list-table tbody tr")).to_have_count(31)
    await page.keyboard.press("/")
    await expect(page.locator("#list-search")).to_be_focused()
    await page.keyboard.type("smith")
    await expect(page.locator("#list-table tbody tr")).to_have_count(1)
    await expect(page.locator("#list-table tbody")).to_contain_text("jsmith")
    await url_has(page, "q=smith")
    await page.fill("#list-search", "no-such-user")
    await expect(page.locator("#list-table")).to_contain_text("No users match this search")
    await page.go_back()
    await expect(page.locator("#list-table tbody tr")).to_have_count(1)


async def test_inline_edit_enter_saves_escape_cancels(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    await seed_users(database_url)
    user_id = await _sql(database_url, "SELECT id FROM users WHERE username = 'jsmith'")
    await page.goto(server.url + "/users?q=jsmith")
    row = page.locator(f"#row-{user_id}")
    await row.locator("summary").click()
    await row.get_by_role("link", name="Edit").click()
    await expect(row.locator("input[name=username]")).to_be_focused()
    field = row.locator("input[name=full_name]")
    await field.fill("Johnny <b>Smith</b>")
    await field.press("Enter")
    await expect(row.locator("td").nth(4)).to_have_text("Johnny <b>Smith</b>")
    stored = await _sql(database_url, "SELECT full_name FROM users WHERE id = $1", user_id)
    assert stored == "Johnny <b>Smith</b>"
    await row.locator("summary").click()
    await row.get_by_role("link", name="Edit").click()
    await expect(row.locator("input[name=username]")).to_be_focused()
    await row.locator("input[name=full_name]").fill("Discarded")
    await row.locator("input[name=full_name]").press("Escape")
    await expect(row.locator("td").nth(4)).to_have_text("Johnny <b>Smith</b>")
    assert await _sql(database_url, "SELECT full_name FROM users WHERE id = $1", user_id) == (
        "Johnny <b>Smith</b>"
    )


async def test_conflict_view_then_overwrite(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    await seed_users(database_url)
    user_id = await _sql(database_url, "SELECT id FROM users WHERE username = 'jsmith'")
    await page.goto(server.url + f"/users/{user_id}/edit")
    # someone else saves while the form is open
    await _sql(database_url, "UPDATE users SET full_name = 'Theirs' WHERE id = $1", user_id)
    await page.fill("#f-full_name", "Mine")
    await page.click("#record-form button[type=submit]")
    conflict = page.locator(".conflict")
    await expect(conflict).to_contain_text("Someone else saved this user")
    await expect(conflict.locator("tr.differs")).to_contain_text("Theirs")
    await expect(conflict.locator("tr.differs")).to_contain_text("Mine")
    assert await _sql(database_url, "SELECT full_name FROM users WHERE id = $1", user_id) == (
        "Theirs"
    )
    await page.get_by_role("button", name="Overwrite with mine").click()
    # the conflict page already sits at /users/{id} (the form posted there): wait for the
    # show page that follows the save, not for the URL
    await expect(page.locator(".conflict")).to_have_count(0)
    await page.wait_for_url(server.url + f"/users/{user_id}")
    assert await _sql(database_url, "SELECT full_name FROM users WHERE id = $1", user_id) == "Mine"


async def test_inline_conflict_shows_both_values(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    await seed_users(database_url)
    user_id = await _sql(database_url, "SELECT id FROM users WHERE username = 'jsmith'")
    await page.goto(server.url + "/users?q=jsmith")
    row = page.locator(f"#row-{user_id}")
    await row.locator("summary").click()
    await row.get_by_role("link", name="Edit").click()
    # the editor must have been read (and wired) before the row changes underneath it
    await expect(row.locator("input[name=username]")).to_be_focused()
    await _sql(database_url, "UPDATE users SET email = 'new@smith.example' WHERE id = $1", user_id)
    await row.locator("input[name=email]").fill("mine@smith.example")
    await row.locator("input[name=email]").press("Enter")
    await expect(row).to_contain_text("Saved meanwhile: new@smith.example")
    await row.get_by_role("button", name="Overwrite with mine").click()
    await expect(page.locator(f"#row-{user_id}[data-inline-edit]")).to_have_count(0)
    stored = await _sql(database_url, "SELECT email FROM users WHERE id = $1", user_id)
    assert stored == "mine@smith.example"
