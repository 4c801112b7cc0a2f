import re
from pathlib import Path

import asyncpg
from playwright.async_api import Page, Route, expect

from tests.conftest import TEST_SECRET_KEY
from tests.e2e.conftest import log_in_page
from tests.live import live_server
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


async def test_a_page_too_far_behind_to_replay_reloads_itself(
    page: Page, database_url: str, tmp_path: Path, e2e_admin: tuple[str, str]
):
    env = {"SSE_REPLAY_MAX_EVENTS": "2"}
    with live_server(database_url, TEST_SECRET_KEY, tmp_path, extra_env=env) as server:
        await log_in_page(page, server.url, *e2e_admin)
        conn = await asyncpg.connect(database_url)
        customer = await add_customer(conn)
        await insert_orders(conn, customer, 5)
        newest = await conn.fetchval("SELECT max(id) FROM order_events")
        await conn.close()
        live = page.locator("[data-live]")
        await expect(live).to_have_attribute("sse-connect", re.compile(rf"after={newest}\b"))

        async def five_events_behind(route: Route) -> None:
            # a page rendered before those five events, as a tab left open would be
            response = await route.fetch()
            html = re.sub(r"after=\d+", "after=0", await response.text())
            html = html.replace("data-live>", "data-live data-stale-page>", 1)
            await route.fulfill(response=response, body=html)

        await page.route(server.url + "/", five_events_behind, times=1)
        await page.goto(server.url + "/")
        # the server sends `reload` instead of replaying; the page loads afresh
        await expect(page.locator("[data-stale-page]")).to_have_count(0)
        await expect(live).to_have_attribute("sse-connect", re.compile(rf"after={newest}\b"))
        await expect(page.locator("[data-live-state]")).to_have_attribute("data-live-state", "live")
        await expect(page.locator("#feed li")).to_have_count(5)
