"""Browser: a search or an inline save that meets a lock someone else holds, or gets no
answer at all, says so in the flash area, and keeps what the reader typed where it was."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests import axe
from tests.e2e.shared import fetchval as _sql
from tests.e2e.shared import seed_users
from tests.e2e.test_accessibility import Sweep
from tests.live import LiveServer
from tests.test_locked_data import holding

LOCKED = "locked by another change"


@pytest.fixture(scope="module")
def axe_source() -> str:
    return axe.axe_source()


async def test_a_search_of_a_table_being_altered_says_so_and_keeps_the_list(
    logged_in_page: Page, server: LiveServer, database_url: str, axe_source: str
) -> None:
    page = logged_in_page
    await seed_users(database_url)
    await page.goto(server.url + "/users")
    rows = page.locator("#list-table tbody tr")
    await expect(rows).to_have_count(31)
    search = page.locator("#list-search")
    async with holding(database_url, "ALTER TABLE users ADD COLUMN extra text"):
        await search.fill("smith")
        alert = page.locator("#flashes [role=alert]")
        await expect(alert).to_contain_text(LOCKED)
        await expect(rows).to_have_count(31)
        await expect(search).to_be_focused()
        await expect(search).to_have_value("smith")
        assert page.url == server.url + "/users"
        # the message as shown: axe-core, contrast and width, light and dark, 390 px too
        sweep = Sweep(page, axe_source)
        await sweep.check("a search refused by a lock")
        sweep.assert_clean()
        await expect(alert).to_contain_text(LOCKED)
    await search.press("End")
    await page.keyboard.type(" ")
    await page.keyboard.press("Backspace")
    await expect(rows).to_have_count(1)
    await expect(page.locator("#list-table tbody")).to_contain_text("jsmith")


async def test_an_inline_save_of_a_held_row_says_so_and_keeps_the_editor_open(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    user_id = await seed_users(database_url)
    await page.goto(server.url + "/users?q=jsmith")
    row = page.locator(f"#row-{user_id}")
    await row.locator("summary").click()
    await row.get_by_role("link", name="Edit").click()
    field = row.locator("input[name=full_name]")
    await expect(row.locator("input[name=username]")).to_be_focused()
    async with holding(database_url, f"SELECT 1 FROM users WHERE id = {user_id} FOR UPDATE"):
        await field.fill("Johnny Smith")
        await field.press("Enter")
        await expect(page.locator("#flashes [role=alert]")).to_contain_text(LOCKED)
        await expect(field).to_have_value("Johnny Smith")
    stored = await _sql(database_url, "SELECT full_name FROM users WHERE id = $1", user_id)
    assert stored == "John Smith"
    # once the row is free the same editor saves what was typed
    await field.press("Enter")
    await expect(row.locator("td").nth(4)).to_have_text("Johnny Smith")
    stored = await _sql(database_url, "SELECT full_name FROM users WHERE id = $1", user_id)
    assert stored == "Johnny Smith"


async def test_a_search_the_server_never_answers_says_so(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    await seed_users(database_url)
    await page.goto(server.url + "/users")
    await expect(page.locator("#list-table tbody tr")).to_have_count(31)
    server.process.terminate()
    server.process.wait(10)
    await page.locator("#list-search").fill("smith")
    alert = page.locator("#flashes [role=alert]")
    await expect(alert).to_have_text(
        "The panel did not answer. Check the connection and try again."
    )
    await expect(page.locator("#list-table tbody tr")).to_have_count(31)
    await expect(page.locator("#list-search")).to_have_value("smith")


async def test_a_link_to_a_record_gone_meanwhile_shows_its_error_page(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    user_id = await seed_users(database_url)
    await page.goto(server.url + "/users")
    # a link on the page to a record deleted since (the live list strikes its own rows'
    # links, so one of its own), followed with htmx as every link of the page is
    await page.evaluate(
        """id => {
            const link = document.createElement("a");
            link.href = "/users/" + id;
            link.id = "old-link";
            link.textContent = "John Smith";
            document.querySelector("main").prepend(link);
            htmx.process(link);
        }""",
        user_id,
    )
    await _sql(database_url, "DELETE FROM users WHERE id = $1", user_id)
    await page.locator("#old-link").click()
    await expect(page.locator(".error-page h1")).to_have_text("Not found")
    await expect(page.locator(".error-page")).to_contain_text(f"There is no user {user_id}.")
    assert page.url == f"{server.url}/users/{user_id}"
