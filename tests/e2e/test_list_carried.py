"""Browser: a list's state travels with its rows and forms. An inline edit on a list showing
chosen columns keeps those columns (save and cancel); a new record made from a searched,
sorted list returns to it; a combined sort is chosen from a column's "then" link."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.e2e.shared import SIZES
from tests.e2e.shared import fetch as _sql
from tests.e2e.waits import url_has
from tests.live import LiveServer


async def _seed_users(database_url: str) -> None:
    await _sql(
        database_url,
        """
        INSERT INTO users (username, email, full_name)
        SELECT 'carry' || g, 'carry' || g || '@example.com', 'Carried ' || g
        FROM generate_series(1, 5) AS g
        """,
    )


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_inline_edit_keeps_the_chosen_columns(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await _seed_users(database_url)
    await page.goto(server.url + "/users?q=carry&cols=username,email")
    header = page.locator("#list-table thead th")
    width = await header.count()
    row = page.locator("#list-table tbody tr").first
    await expect(row.locator("td")).to_have_count(width)
    await row.locator("summary").click()
    await row.get_by_role("link", name="Edit").click()
    editor = page.locator("tr[data-inline-edit]")
    field = editor.locator("input[name=email]")
    await expect(editor.locator("input[name=username]")).to_be_focused()
    await expect(editor.locator("input[name=full_name]")).to_have_count(0)
    await expect(editor.locator("td")).to_have_count(width)
    await field.fill("changed@example.com")
    await field.press("Enter")
    saved = page.locator("#list-table tbody tr", has_text="changed@example.com")
    await expect(saved).to_have_count(1)
    await expect(saved.locator("td")).to_have_count(width)
    await expect(saved).not_to_contain_text("Carried")  # full_name is not a column here
    await saved.locator("summary").click()
    await saved.get_by_role("link", name="Edit").click()
    await page.locator("tr[data-inline-edit] input[name=email]").press("Escape")
    await expect(page.locator("tr[data-inline-edit]")).to_have_count(0)
    again = page.locator("#list-table tbody tr", has_text="changed@example.com")
    await expect(again.locator("td")).to_have_count(width)
    await expect(header).to_have_count(width)


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_a_new_record_from_a_list_returns_to_that_list(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await _seed_users(database_url)
    state = "/users?q=carry&sort=email&dir=desc&limit=25&cols=username%2Cemail"
    await page.goto(server.url + state)
    await page.get_by_role("link", name="New user").click()
    await expect(page.locator("h1")).to_have_text("New user")
    await page.get_by_role("link", name="Cancel").click()
    await page.wait_for_url(server.url + state)
    await page.get_by_role("link", name="New user").click()
    await page.fill("input[name=username]", "carry9")
    await page.fill("input[name=email]", "carry9@example.com")
    await page.fill("input[name=full_name]", "Carried Nine")
    await page.get_by_role("button", name="Create user").click()
    await page.wait_for_url(server.url + state)
    await expect(page.locator(".flash")).to_contain_text("created")
    await expect(page.locator("#list-table tbody tr")).to_have_count(6)
    await expect(page.locator("#list-table thead")).not_to_contain_text("Full name")
    await expect(page.locator("#list-search")).to_have_value("carry")


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_a_combined_sort_from_the_then_link(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    (user,) = await _sql(
        database_url,
        "INSERT INTO users (username, email, full_name) VALUES ('buyer', 'b@example.com', 'B')"
        " RETURNING id",
    )
    await _sql(
        database_url,
        """
        INSERT INTO orders (user_id, status, total, created_at)
        SELECT $1, (ARRAY['paid', 'pending'])[1 + g % 2], g,
               timestamptz '2026-01-01 00:00+00' + (g % 3) * interval '1 hour'
        FROM generate_series(1, 12) AS g
        """,
        user["id"],
    )
    await _sql(database_url, "CREATE INDEX orders_status_created ON orders (status, created_at)")
    await page.goto(server.url + "/orders")
    token = await page.evaluate("document.querySelector('meta[name=csrf-token]').content")
    refreshed = await page.request.post(
        server.url + "/tables/refresh", form={"csrf_token": token}, max_redirects=0
    )
    assert refreshed.status in (200, 303)
    await page.goto(server.url + "/orders?sort=status&limit=5")
    await page.get_by_role("link", name="Sort by Status, then by Created").click()
    await expect(page.locator("#list-table thead th[aria-sort=ascending]")).to_contain_text(
        "Status"
    )
    await url_has(page, "sort=status%2Ccreated_at")
    await expect(page.locator("#list-table thead")).to_contain_text("▲2")
    expected = [
        r["id"]
        for r in await _sql(database_url, "SELECT id FROM orders ORDER BY status, created_at, id")
    ]
    seen: list[int] = []
    for _ in range(3):
        ids = await page.locator("#list-table tbody tr").evaluate_all(
            "rows => rows.map(r => Number(r.id.slice(4)))"
        )
        seen += ids
        following = page.locator("#list-table nav[aria-label=Pages]").get_by_role(
            "link", name="Next"
        )
        if await following.count() == 0:
            break
        await following.click()
        await expect(page.locator("#list-table tbody tr").first).not_to_have_id(f"row-{ids[0]}")
    assert seen == expected
