import asyncpg
from playwright.async_api import Page, expect

from tests.live_helpers import add_customer, insert_orders


async def test_new_order_appears_without_reload_and_pause_holds_it(
    logged_in_page: Page, database_url: str
):
    page = logged_in_page
    await expect(page.locator("[data-live-state]")).to_have_attribute("data-live-state", "live")
    conn = await asyncpg.connect(database_url)
    customer = await add_customer(conn)
    await insert_orders(conn, customer, 1)
    order_id = await conn.fetchval("SELECT max(id) FROM orders")
    item = page.locator(f'#feed a[href="/orders/{order_id}"]')
    await expect(item).to_be_visible()
    await expect(page.locator('[data-counter="total"]')).to_have_text("1")
    # the resume point travels in the URL the extension reconnects to
    assert "after=1" in (await page.locator("[data-live]").get_attribute("sse-connect") or "")

    await page.click("[data-live-pause]")
    await insert_orders(conn, customer, 1)
    await page.wait_for_timeout(1000)
    assert await page.locator("#feed li").count() == 1
    await page.click("[data-live-pause]")
    await expect(page.locator("#feed li")).to_have_count(2)
    assert await page.locator("#feed li").first.get_attribute("data-event-id") == "2"
    await conn.close()
