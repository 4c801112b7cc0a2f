"""Browser: a reference field's autocomplete by keyboard, and the product's new category."""

from __future__ import annotations

import asyncpg
from playwright.async_api import Page, expect

from tests.live import LiveServer


async def _seed(database_url: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO categories (name) VALUES ('Garden'), ('Kitchen'), ('Garden 50% off')"
        )
        product = await conn.fetchval(
            "INSERT INTO products (sku, name, price, category_id)"
            " SELECT 'LMP-0001', 'Desk lamp', 19.99, id FROM categories WHERE name = 'Kitchen'"
            " RETURNING id"
        )
        garden = await conn.fetchval("SELECT id FROM categories WHERE name = 'Garden'")
        kitchen = await conn.fetchval("SELECT id FROM categories WHERE name = 'Kitchen'")
        return product, garden, kitchen
    finally:
        await conn.close()


async def test_reference_autocomplete_by_keyboard(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    product, garden, kitchen = await _seed(database_url)
    await page.goto(f"{server.url}/products/{product}/edit")
    await expect(page.locator("#f-category_id")).to_have_value(str(kitchen))
    await expect(page.locator(".field-reference")).to_contain_text("Now: Kitchen")
    find = page.locator("#f-category_id-find")
    await find.focus()
    await page.keyboard.type("50%")
    options = page.locator("#f-category_id-options button")
    await expect(options).to_have_count(1)
    await expect(options).to_contain_text("Garden 50% off")
    await page.keyboard.press("Tab")
    await expect(options.first).to_be_focused()
    await page.keyboard.press("Enter")
    field = page.locator("#f-category_id")
    await expect(field).to_be_focused()
    await find.fill("garden")
    await expect(options).to_have_count(2)
    await options.filter(has_text="Garden").filter(has_not_text="50%").click()
    await expect(field).to_have_value(str(garden))
    await page.click("#record-form button[type=submit]")
    await page.wait_for_url(f"{server.url}/products/{product}")
    await expect(page.locator("dl.details")).to_contain_text("Garden")
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval("SELECT category_id FROM products WHERE id = $1", product)
    finally:
        await conn.close()
    assert stored == garden
