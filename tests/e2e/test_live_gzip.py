"""The live streams compressed, in a real browser: Chromium asks for gzip, the dashboard
and a live list still update, and a dashboard resumes after its compressed stream ended
properly (a graceful restart: the gzip body ends without a trailer, see admin/live/sse_gzip.py)
or was cut (a killed server)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
from playwright.async_api import ConsoleMessage, Page, Request, Response, expect

from tests.conftest import TEST_SECRET_KEY
from tests.e2e.conftest import log_in_page
from tests.live import LiveServer, free_port, live_server
from tests.live_helpers import add_customer, capture_ready, insert_orders

STREAMS = ("/events", "/live/changes")


def _streams(page: Page) -> list[Response]:
    found: list[Response] = []

    def seen(response: Response) -> None:
        if response.url.split("?")[0].endswith(STREAMS):
            found.append(response)

    page.on("response", seen)
    return found


async def _compressed(responses: list[Response], path: str) -> None:
    """The stream at `path` was asked for with gzip and answered with it."""
    ours = [r for r in responses if r.url.split("?")[0].endswith(path)]
    assert ours, [r.url for r in responses]
    for response in ours:
        asked = await response.request.all_headers()
        assert "gzip" in asked.get("accept-encoding", ""), asked
        headers = await response.all_headers()
        assert headers.get("content-encoding") == "gzip", headers
        assert "accept-encoding" in headers.get("vary", ""), headers


async def test_the_dashboard_and_a_live_list_update_over_compressed_streams(
    logged_in_page: Page, server: LiveServer, database_url: str
):
    page = logged_in_page
    responses = _streams(page)
    await page.goto(server.url + "/")
    await expect(page.locator("[data-live-state]")).to_have_attribute("data-live-state", "live")
    conn = await asyncpg.connect(database_url)
    customer = await add_customer(conn)
    await insert_orders(conn, customer, 3)
    newest = await conn.fetchval("SELECT max(id) FROM orders")
    await expect(page.locator(f'#feed a[href="/orders/{newest}"]')).to_be_visible()
    await expect(page.locator("#feed li")).to_have_count(3)
    await expect(page.locator('[data-counter="total"]')).to_have_text("3")
    await _compressed(responses, "/events")

    await capture_ready(conn, ("categories",))
    tea = await conn.fetchval("INSERT INTO categories (name) VALUES ('Tea') RETURNING id")
    await page.goto(server.url + "/categories")
    await expect(page.locator(".live-bar .live-state")).to_have_text("Live")
    await conn.execute("UPDATE categories SET name = 'Green tea' WHERE id = $1", tea)
    await expect(page.locator(f"#row-{tea}")).to_contain_text("Green tea")
    await _compressed(responses, "/live/changes")
    await conn.close()


async def test_a_dashboard_resumes_after_its_compressed_stream_ends_or_is_cut(
    page: Page, database_url: str, tmp_path: Path, e2e_admin: tuple[str, str]
):
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    def failed(request: Request) -> None:
        problems.append(f"{request.url}: {request.failure}")

    page.on("console", console)
    page.on("requestfailed", failed)
    responses = _streams(page)
    port = free_port()
    conn = await asyncpg.connect(database_url)
    customer = await add_customer(conn)
    feed = page.locator("#feed li")
    state = page.locator("[data-live-state]")

    with live_server(database_url, TEST_SECRET_KEY, tmp_path, port=port) as first:
        await log_in_page(page, first.url, *e2e_admin)
        await expect(state).to_have_attribute("data-live-state", "live")
        await insert_orders(conn, customer, 1)
        await expect(feed).to_have_count(1)
        # a graceful stop ends the stream properly: the last bytes are the gzip trailer
        first.process.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(first.process.wait, 30) == 0
    await insert_orders(conn, customer, 1)  # while no server runs
    with live_server(database_url, TEST_SECRET_KEY, tmp_path, port=port) as second:
        await expect(feed).to_have_count(2, timeout=30_000)
        await expect(state).to_have_attribute("data-live-state", "live")
        # the gzip body that ended without a trailer failed nothing: only the connections
        # refused while no server ran
        assert not [p for p in problems if "ERR_" in p and "CONNECTION_REFUSED" not in p]
        # killed: the stream stops mid-body, with no trailer and no last chunk
        second.process.kill()
        await asyncio.to_thread(second.process.wait, 30)
    await insert_orders(conn, customer, 1)
    with live_server(database_url, TEST_SECRET_KEY, tmp_path, port=port):
        await expect(feed).to_have_count(3, timeout=30_000)
        await expect(state).to_have_attribute("data-live-state", "live")
        await insert_orders(conn, customer, 1)
        await expect(feed).to_have_count(4)
    await conn.close()
    # every stream of the three servers was compressed, and none failed to decode (the
    # killed server's streams end as incomplete chunked bodies, as they would plain)
    await _compressed(responses, "/events")
    assert len(responses) >= 3
    assert not [p for p in problems if "DECOD" in p.upper()], problems
