"""Browser, keyboard alone: search with "/", leave the box with Escape, walk the rows with j
and k, tick two with x, reach the bulk action with Tab, confirm with Space; the change is in
the database, focus is on the list's heading and the result is read out."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.e2e.shared import SIZES
from tests.e2e.waits import url_has
from tests.live import LiveServer


async def _seed(database_url: str) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """
            INSERT INTO users (username, email, full_name)
            SELECT 'other' || g, 'other' || g || '@example.com', 'Other ' || g
            FROM generate_series(1, 20) AS g
            """
        )
        rows = await conn.fetch(
            """
            INSERT INTO users (username, email, full_name)
            SELECT 'kbd' || g, 'kbd' || g || '@example.com', 'Keys ' || g
            FROM generate_series(1, 4) AS g RETURNING id
            """
        )
        return [r["id"] for r in rows]
    finally:
        await conn.close()


async def _focused(page: Page) -> str:
    return await page.evaluate(
        "() => { const a = document.activeElement;"
        " return (a.id || a.tagName) + '|' + (a.textContent || '').trim().slice(0, 60); }"
    )


async def _tab_to(page: Page, wanted: str, *, back: bool = False, most: int = 60) -> None:
    """Press Tab (Shift+Tab with `back`) until the focused element's id or text has `wanted`."""
    for _ in range(most):
        if wanted in await _focused(page):
            return
        await page.keyboard.press("Shift+Tab" if back else "Tab")
    raise AssertionError(f"{wanted!r} was not reached by keyboard; at {await _focused(page)}")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_a_bulk_action_by_keyboard_alone(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict, scheme: str
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await page.emulate_media(color_scheme=scheme)
    ids = await _seed(database_url)
    await page.goto(server.url + "/users")
    await expect(page.locator("#list-table tbody tr")).to_have_count(24)
    await page.keyboard.press("/")
    await expect(page.locator("#list-search")).to_be_focused()
    await page.keyboard.type("kbd")
    await expect(page.locator("#list-table tbody tr")).to_have_count(4)
    # Escape leaves the box as typed; the rows follow with j and k
    await page.keyboard.press("Escape")
    await expect(page.locator("#list-search")).to_have_value("kbd")
    await page.keyboard.press("j")
    rows = page.locator("#list-table tbody tr")
    await expect(rows.nth(0)).to_be_focused()
    await page.keyboard.press("x")
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    await page.keyboard.press("k")
    await expect(rows.nth(1)).to_be_focused()
    await page.keyboard.press("x")
    bar = page.locator("#bulk-form")
    await expect(bar).to_contain_text("2 selected")
    picked = [
        int(i)
        for i in await rows.locator("input[name=ids]:checked").evaluate_all(
            "boxes => boxes.map(b => b.value)"
        )
    ]
    assert len(picked) == 2 and set(picked) <= set(ids)
    await expect(page.locator("#list-search")).to_have_value("kbd")  # nothing searched again
    # back up to the action, choose it by typing, on to Apply
    await _tab_to(page, "bulk-action", back=True)
    await page.keyboard.type("Deac")
    await expect(page.locator("#bulk-action")).to_have_value("deactivate")
    await page.keyboard.press("Tab")
    assert "Apply" in await _focused(page)
    await page.keyboard.press("Enter")
    await expect(page.locator("h1")).to_have_text("Deactivate: 2 users?")
    await _tab_to(page, "BUTTON|Deactivate: 2 users")
    await page.keyboard.press("Space")
    await expect(page.locator(".flash")).to_contain_text("2 users changed")
    await url_has(page, "q=kbd")
    conn = await asyncpg.connect(database_url)
    try:
        inactive = await conn.fetch("SELECT id FROM users WHERE NOT is_active ORDER BY id")
    finally:
        await conn.close()
    assert [r["id"] for r in inactive] == sorted(picked)
    # after the swap: focus on the list's heading, the result read out
    await expect(page.locator("main h1")).to_be_focused()
    await expect(page.locator("#announcer")).to_contain_text("2 users changed")
