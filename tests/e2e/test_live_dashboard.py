import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from playwright.async_api import Page, Route, expect

from tests import axe
from tests.conftest import TEST_SECRET_KEY
from tests.e2e.conftest import log_in_page
from tests.e2e.test_accessibility import Sweep
from tests.e2e.waits import url_has
from tests.live import LiveServer, live_server
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


CONTRAST = """
() => {
  // computed colours come as rgb(0-255) or, for color-mix(), as color(srgb 0-1)
  function rgb(text) {
    const scale = text.startsWith("color(") ? 255 : 1;
    return text.match(/[\\d.]+/g).slice(0, 3).map(v => Number(v) * scale);
  }
  function channel(v) {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  }
  function luminance(c) {
    const [r, g, b] = c.map(channel);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  const feed = document.getElementById("feed");
  const style = getComputedStyle(feed);
  const back = luminance(rgb(style.backgroundColor));
  const ratios = [...feed.querySelectorAll(".feed-item, .feed-item *")].map(el => {
    const fore = luminance(rgb(getComputedStyle(el).color));
    return (Math.max(fore, back) + 0.05) / (Math.min(fore, back) + 0.05);
  });
  return { opacity: style.opacity, background: style.backgroundColor,
           contrast: Math.min(...ratios) };
}
"""


async def test_paused_feed_says_how_many_are_new_and_stays_readable(
    logged_in_page: Page, database_url: str
):
    page = logged_in_page
    state = page.locator("[data-live-state]")
    await expect(state).to_have_attribute("data-live-state", "live")
    await expect(state).to_have_text(re.compile(r"^\s*Live\s*$"))
    conn = await asyncpg.connect(database_url)
    customer = await add_customer(conn)
    await insert_orders(conn, customer, 1)
    await expect(page.locator("#feed li")).to_have_count(1)
    before = await page.evaluate(CONTRAST)
    await page.click("[data-live-pause]")
    await expect(state).to_have_text(re.compile(r"Paused · 0 new"))
    await insert_orders(conn, customer, 2)
    await expect(state).to_have_text(re.compile(r"Paused · 2 new"))
    await expect(state).to_have_attribute("data-live-state", "paused")
    paused = await page.evaluate(CONTRAST)
    # tinted, not faded: full opacity, another background, text still readable
    assert paused["opacity"] == "1"
    assert paused["background"] != before["background"]
    assert paused["contrast"] >= 4.5, paused
    await page.click("[data-live-pause]")
    await expect(page.locator("#feed li")).to_have_count(3)
    await expect(state).to_have_text(re.compile(r"^\s*Live\s*$"))
    # the network goes away: the state says since when
    await page.context.set_offline(True)
    await expect(state).to_have_text(re.compile(r"Offline since \d{1,2}:\d{2}"))
    await expect(state).to_have_attribute("data-live-state", "offline")
    await page.context.set_offline(False)
    await conn.close()


async def test_chart_switches_range_and_tells_each_bar_on_hover(
    logged_in_page: Page, database_url: str
):
    page = logged_in_page
    conn = await asyncpg.connect(database_url)
    customer = await add_customer(conn)
    await insert_orders(conn, customer, 3)
    await conn.execute(
        "INSERT INTO orders (user_id, total, created_at)"
        " VALUES ($1, 1, now() - interval '5 hours')",
        customer,
    )
    await conn.close()
    await page.reload()
    bars = page.locator("#chart rect.bar")
    await expect(bars).to_have_count(60)
    await expect(page.locator("#chart text.axis-title")).to_have_text(
        ["Time (UTC)", "Orders per minute"]
    )
    await page.click('a[data-chart-range="day"]')
    await expect(bars).to_have_count(24)
    await expect(page.locator('a[data-chart-range="day"]')).to_have_attribute(
        "aria-current", "true"
    )
    await expect(page.locator("#chart-heading")).to_have_text(re.compile("last 24 hours"))
    await url_has(page, "range=day")
    # the live feed's hourly chart does not overwrite the day shown
    await page.wait_for_timeout(1500)
    await expect(bars).to_have_count(24)
    tall = page.locator('#chart rect.bar:not([data-orders="0"])').last
    await tall.hover()
    await expect(page.locator("[data-chart-tip]")).to_have_text(
        re.compile(r"\d{2}:\d{2} to \d{2}:\d{2} UTC: 3 orders \(0\.1 a minute\)")
    )
    await page.click('a[data-chart-range="week"]')
    await expect(bars).to_have_count(28)
    await page.click('a[data-chart-range="hour"]')
    await expect(bars).to_have_count(60)
    await url_has(page, absent=("range=",))


KOLKATA = ZoneInfo("Asia/Kolkata")


def in_kolkata(iso: str, fmt: str) -> str:
    return datetime.fromisoformat(iso).astimezone(KOLKATA).strftime(fmt)


async def _chart_in_kolkata(page: Page, fmt: str) -> None:
    """Every tick, bar label and the axis title of the chart shown name Kolkata's time."""
    await expect(page.locator("#chart svg.chart[data-local]")).to_have_count(1)
    # read at once: a frame the stream brings meanwhile replaces the whole chart
    shown = await page.locator("#chart svg.chart").evaluate(
        """svg => ({
            first: svg.getAttribute("data-first"),
            step: svg.getAttribute("data-step"),
            ticks: Array.from(svg.querySelectorAll("text.tick[data-at]"),
                              t => [t.getAttribute("data-at"), t.textContent]),
            bars: Array.from(svg.querySelectorAll("rect.bar"), b => [
                b.getAttribute("data-label"), b.querySelector("title").textContent]),
            axis: svg.querySelector("[data-zone-title]").textContent,
        })"""
    )
    first = datetime.fromisoformat(shown["first"])
    step = timedelta(minutes=int(shown["step"]))
    assert len(shown["ticks"]) == 4
    for at, text in shown["ticks"]:
        assert text == in_kolkata(at, fmt)
    for i, (label, title) in enumerate(shown["bars"]):
        span = in_kolkata((first + i * step).isoformat(), fmt)
        if step > timedelta(minutes=1):
            span += " to " + in_kolkata((first + (i + 1) * step).isoformat(), fmt)
        assert label.startswith(f"{span} IST: "), label
        assert title == label
    assert shown["axis"] == "Time (IST)"


async def test_a_reader_in_another_zone_sees_the_feed_and_chart_in_it(
    page: Page, server: LiveServer, e2e_admin: tuple[str, str], database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)
    await conn.execute(
        "UPDATE staff SET time_zone = 'Asia/Kolkata' WHERE username = $1", e2e_admin[0]
    )
    customer = await add_customer(conn)
    await insert_orders(conn, customer, 3)
    await log_in_page(page, server.url, *e2e_admin)
    await expect(page.locator("[data-live-state]")).to_have_attribute("data-live-state", "live")
    times = page.locator("#feed time")
    await expect(times).to_have_count(3)
    for at, text in zip(
        await times.evaluate_all("els => els.map(e => e.getAttribute('datetime'))"),
        await times.all_inner_texts(),
        strict=True,
    ):
        assert text == in_kolkata(at, "%H:%M:%S IST")
    await _chart_in_kolkata(page, "%H:%M")
    sweep = Sweep(page, axe.axe_source())
    await sweep.check("the dashboard in Asia/Kolkata")
    sweep.assert_clean()
    # what the stream brings is named in Kolkata's time as well: a new order and the chart
    # frame that counts it
    await insert_orders(conn, customer, 1)
    await conn.close()
    await expect(times).to_have_count(4)
    newest = times.first
    assert await newest.inner_text() == in_kolkata(
        await newest.get_attribute("datetime") or "", "%H:%M:%S IST"
    )
    await expect(page.locator("#chart-title")).to_contain_text(": 4 orders in all")
    await _chart_in_kolkata(page, "%H:%M")
    await page.click('a[data-chart-range="week"]')
    await expect(page.locator("#chart rect.bar")).to_have_count(28)
    await _chart_in_kolkata(page, "%a %H:%M")
