"""Browser: a combined sort with a direction per column is picked from the header and "then by"
links, pages forward and survives a search; a record opened from a list, edited and saved,
leads back to that very list. On a desktop and a phone."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.e2e.shared import SIZES
from tests.e2e.shared import fetch as _sql
from tests.e2e.waits import url_has
from tests.live import LiveServer


async def _refresh(page: Page, server: LiveServer) -> None:
    await page.goto(server.url + "/users")
    token = await page.evaluate("document.querySelector('meta[name=csrf-token]').content")
    refreshed = await page.request.post(
        server.url + "/tables/refresh", form={"csrf_token": token}, max_redirects=0
    )
    assert refreshed.status in (200, 303)


async def _ids(page: Page) -> list[int]:
    return await page.locator("#list-table tbody tr").evaluate_all(
        "rows => rows.map(r => Number(r.id.slice(4)))"
    )


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_a_mixed_direction_sort_pages_and_survives_a_search(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await _sql(
        database_url,
        """
        INSERT INTO users (username, email, full_name, is_active)
        SELECT 'mixed' || lpad(g::text, 3, '0'), 'm' || (g * 7919 % 1000) || '@example.com',
               'Mixed ' || g, g % 3 <> 0
        FROM generate_series(1, 30) AS g
        """,
    )
    await _sql(database_url, "CREATE INDEX users_active_email ON users (is_active, email DESC)")
    await _refresh(page, server)
    await page.goto(server.url + "/users?limit=10")
    await page.locator("#list-table thead").get_by_role("link", name="Active", exact=True).click()
    await expect(page.locator("#list-table thead th[aria-sort=ascending]")).to_contain_text(
        "Active"
    )
    await page.get_by_role("link", name="Sort by Active, then by Email descending").click()
    await expect(page.locator("#list-table thead")).to_contain_text("▼2")
    await url_has(page, "sort=is_active%2C-email")
    expected = [
        r["id"]
        for r in await _sql(database_url, "SELECT id FROM users ORDER BY is_active, email DESC, id")
    ]
    seen = await _ids(page)
    following = page.locator("#list-table nav[aria-label=Pages]").get_by_role("link", name="Next")
    await following.click()
    await expect(page.locator("#list-table tbody tr").first).not_to_have_id(f"row-{seen[0]}")
    seen += await _ids(page)
    assert seen == expected[:20]
    await page.fill("#list-search", "mixed00")
    await expect(page.locator("#list-table tbody tr")).to_have_count(9)
    await url_has(page, "sort=is_active%2C-email", "q=mixed00")
    matching = [
        r["id"]
        for r in await _sql(
            database_url,
            "SELECT id FROM users WHERE username LIKE 'mixed00%'"
            " ORDER BY is_active, email DESC, id",
        )
    ]
    assert await _ids(page) == matching
    await expect(page.locator("#list-table thead")).to_contain_text("▲1")
    await expect(page.locator("#list-table thead")).to_contain_text("▼2")


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_edit_from_a_record_page_leads_back_to_the_list(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await _sql(
        database_url,
        """
        INSERT INTO users (username, email, full_name)
        SELECT 'chain' || g, 'chain' || g || '@example.com', 'Chain ' || g
        FROM generate_series(1, 5) AS g
        """,
    )
    state = "/users?q=chain&sort=email&dir=desc&limit=25"
    await page.goto(server.url + state)
    first = page.locator("#list-table tbody tr").first
    await first.focus()
    await first.press("Enter")
    await expect(page.locator("h1")).to_have_text("chain5")
    await page.get_by_role("link", name="Edit", exact=True).click()
    await expect(page.locator("h1")).to_have_text("Edit chain5")
    await page.fill("input[name=full_name]", "Chain Five")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator(".flash")).to_contain_text("saved")
    await expect(page.locator("h1")).to_have_text("chain5")
    await page.get_by_role("link", name="Back to list").click()
    await page.wait_for_url(server.url + state)
    await expect(page.locator("#list-search")).to_have_value("chain")
    await expect(page.locator("#list-table tbody tr").first).to_contain_text("Chain Five")
