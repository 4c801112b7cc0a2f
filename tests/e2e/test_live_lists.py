"""Live lists, records and forms in a real browser, and ten tabs sharing one stream."""

from __future__ import annotations

import asyncio
import re

import asyncpg
from playwright.async_api import Page, Request, Route, expect

from tests.live import LiveServer
from tests.live_helpers import capture_ready


async def _categories(database_url: str, names: list[str]) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        # the server installs change capture in the background as it starts
        await capture_ready(conn, ("categories",))
        rows = await conn.fetch(
            "INSERT INTO categories (name) SELECT unnest($1::text[]) RETURNING id", names
        )
        return [row["id"] for row in rows]
    finally:
        await conn.close()


async def _execute(database_url: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def _live(page: Page) -> None:
    await expect(page.locator(".live-bar .live-state")).to_have_text("Live")


async def test_a_list_updates_strikes_counts_new_rows_and_pauses(
    logged_in_page: Page, server: LiveServer, database_url: str
):
    page = logged_in_page
    tea, coffee = await _categories(database_url, ["Tea", "Coffee"])
    await page.goto(server.url + "/categories")
    await _live(page)
    await _execute(database_url, "UPDATE categories SET name = 'Green tea' WHERE id = $1", tea)
    row = page.locator(f"#row-{tea}")
    await expect(row).to_contain_text("Green tea")
    await expect(row).to_have_class("live-updated")
    # a row whose actions menu is open keeps it open, and its focus, through an update
    await row.locator("summary").click()
    await _execute(database_url, "UPDATE categories SET name = 'Sencha' WHERE id = $1", tea)
    await expect(row).to_contain_text("Sencha")
    await expect(row.get_by_role("link", name="Edit")).to_be_visible()
    await expect(row.locator("summary")).to_be_focused()
    await row.locator("summary").click()
    await _execute(database_url, "DELETE FROM categories WHERE id = $1", coffee)
    await expect(page.locator(f"#row-{coffee}")).to_have_class("live-deleted")
    await expect(page.locator(f"#row-{coffee}")).to_have_attribute("aria-disabled", "true")
    # new rows wait above the list instead of shoving it
    await _categories(database_url, ["Cocoa", "Mate", "Rooibos"])
    show = page.locator("[data-changes-show]")
    await expect(show).to_have_text("3 new — show them")
    assert await page.locator("tbody tr").count() == 2
    # paused: changes wait, counted, until resumed
    await page.click("[data-changes-pause]")
    await _execute(database_url, "UPDATE categories SET name = 'Black tea' WHERE id = $1", tea)
    await expect(page.locator(".live-bar .live-state")).to_have_text("Paused · 1 waiting")
    await expect(row).to_contain_text("Sencha")
    await page.click("[data-changes-pause]")
    await expect(row).to_contain_text("Black tea")
    await show.click()
    await expect(page.locator("tbody tr")).to_have_count(4)


async def test_a_row_opening_its_inline_editor_is_not_replaced_by_a_live_update(
    logged_in_page: Page, server: LiveServer, database_url: str
):
    page = logged_in_page
    (tea,) = await _categories(database_url, ["Tea"])
    await page.goto(server.url + "/categories")
    await _live(page)
    row = page.locator(f"#row-{tea}")
    held: list[Route] = []

    async def hold(route: Route) -> None:
        held.append(route)

    await page.route(re.compile(rf"/categories/{tea}/inline"), hold)
    await row.locator("summary").click()
    await row.get_by_role("link", name="Edit").click()
    while not held:
        await asyncio.sleep(0.02)
    # while the editor is on its way, the row changes and the live list fetches it again
    async with page.expect_response(re.compile(rf"/categories/{tea}/row")):
        await _execute(database_url, "UPDATE categories SET name = 'Oolong' WHERE id = $1", tea)
    await held[0].continue_()
    editor = page.locator("tr[data-inline-edit]")
    await expect(editor.locator("input[name=name]")).to_have_value("Oolong")
    await expect(editor.locator("input[name=name]")).to_be_focused()


async def test_showing_new_rows_keeps_a_row_open_in_the_inline_editor(
    logged_in_page: Page, server: LiveServer, database_url: str
):
    page = logged_in_page
    (tea,) = await _categories(database_url, ["Tea"])
    await page.goto(server.url + "/categories")
    await _live(page)
    row = page.locator(f"#row-{tea}")
    await row.locator("summary").click()
    await row.get_by_role("link", name="Edit").click()
    name = page.locator("tr[data-inline-edit] input[name=name]")
    await name.fill("Typed, not saved")
    await _categories(database_url, ["Cocoa", "Mate"])
    show = page.locator("[data-changes-show]")
    await expect(show).to_have_text("2 new — show them")
    await show.click()
    await expect(page.locator("tbody tr")).to_have_count(3)
    await expect(name).to_have_value("Typed, not saved")
    await name.press("Enter")
    await expect(page.locator(f"#row-{tea}")).to_contain_text("Typed, not saved")
    await expect(page.locator("tr[data-inline-edit]")).to_have_count(0)


async def test_an_open_edit_form_says_who_changed_the_record(
    logged_in_page: Page, server: LiveServer, database_url: str
):
    page = logged_in_page
    (tea,) = await _categories(database_url, ["Tea"])
    await page.goto(f"{server.url}/categories/{tea}/edit")
    await page.fill("input[name=name]", "My half-typed name")
    conn = await asyncpg.connect(database_url)
    async with conn.transaction():
        await conn.execute("SELECT set_config('admin.actor', 'alice', true)")
        await conn.execute("UPDATE categories SET name = 'Herbal' WHERE id = $1", tea)
    await conn.close()
    notice = page.locator(".live-record .live-state")
    await expect(notice).to_contain_text("Changed by alice")
    await expect(notice.locator("a")).to_have_attribute("href", f"/categories/{tea}/history")
    await expect(page.locator("input[name=name]")).to_have_value("My half-typed name")
    # the record page refreshes its fields
    await page.goto(f"{server.url}/categories/{tea}")
    await _execute(database_url, "UPDATE categories SET name = 'Rooibos' WHERE id = $1", tea)
    await expect(page.locator(".details")).to_contain_text("Rooibos")
    # the refreshed fields read like the page did: times relative, the exact one on hover
    created = page.locator(".details time[datetime]").first
    await expect(created).to_have_attribute("data-exact", re.compile(r" UTC$"))
    await expect(created).to_contain_text(re.compile(r"^(now|.+ ago)"))


async def test_a_record_page_refresh_keeps_the_focus_where_it_was(
    logged_in_page: Page, server: LiveServer, database_url: str
):
    page = logged_in_page
    (tea,) = await _categories(database_url, ["Tea"])
    await _execute(
        database_url, "INSERT INTO categories (name, parent_id) VALUES ('Green', $1)", tea
    )
    await page.goto(f"{server.url}/categories/{tea}")
    related = page.locator(".related tbody a").first
    await related.focus()
    await _execute(database_url, "UPDATE categories SET name = 'Black tea' WHERE id = $1", tea)
    await expect(page.locator(".details")).to_contain_text("Black tea")
    # the record's new name is in its heading, breadcrumbs and the tab's title too
    await expect(page.locator("main h1")).to_have_text("Black tea")
    await expect(page.locator(".breadcrumbs")).to_contain_text("Black tea")
    await expect(page).to_have_title(re.compile("Black tea"))
    # the related records were replaced too: the focus is on the fresh copy of its link
    await expect(related).to_be_focused()
    # a refresh that takes the focused element away leaves the focus on its part
    await _execute(database_url, "DELETE FROM categories WHERE parent_id = $1", tea)
    await _execute(database_url, "UPDATE categories SET name = 'Oolong' WHERE id = $1", tea)
    await expect(page.locator(".details")).to_contain_text("Oolong")
    await expect(page.locator(".related-records")).to_be_focused()


async def test_a_record_page_refresh_shows_a_table_that_came_to_refer_to_it(
    logged_in_page: Page, server: LiveServer, database_url: str
):
    page = logged_in_page
    (tea,) = await _categories(database_url, ["Tea"])
    await page.goto(f"{server.url}/categories/{tea}")
    sections = page.locator(".related h2")
    before = await sections.count()
    await _execute(
        database_url,
        "CREATE TABLE shelf_labels (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " category_id bigint NOT NULL REFERENCES categories, caption text NOT NULL)",
    )
    await _execute(
        database_url,
        "INSERT INTO shelf_labels (category_id, caption) VALUES ($1, 'Top shelf')",
        tea,
    )
    # the panel reads the catalog again within its check interval
    for _ in range(100):
        if (await page.request.get(f"{server.url}/shelf_labels")).ok:
            break
        await asyncio.sleep(0.2)
    await _execute(database_url, "UPDATE categories SET name = 'Black tea' WHERE id = $1", tea)
    await expect(page.locator(".details")).to_contain_text("Black tea")
    # one more section than the page had: all of them are replaced, the new one included
    await expect(sections).to_have_count(before + 1)
    await expect(page.locator(".related", has_text="Shelf labels")).to_contain_text("Top shelf")


async def test_ten_tabs_share_one_stream_and_stay_live_when_the_leader_closes(
    logged_in_page: Page, server: LiveServer, database_url: str
):
    (tea,) = await _categories(database_url, ["Tea"])
    context = logged_in_page.context
    streams: list[Request] = []
    open_now: set[Request] = set()
    # the most streams open at once while the tabs load: a stream the browser reopens after
    # losing it is still one stream at a time
    most = [0]

    owner: dict[Request, Page] = {}

    def count(request: Request) -> None:
        if "/live/changes" in request.url:
            streams.append(request)
            open_now.add(request)
            owner[request] = request.frame.page
            most[0] = max(most[0], len(open_now))

    def end(request: Request) -> None:
        open_now.discard(request)

    context.on("request", count)
    context.on("requestfinished", end)
    context.on("requestfailed", end)
    tabs = [logged_in_page]
    tabs += [await context.new_page() for _ in range(9)]
    for tab in tabs:
        await tab.goto(f"{server.url}/categories")
    for tab in tabs:
        await _live(tab)
    assert most[0] == 1 and len(open_now) == 1, [r.url for r in streams]
    await _execute(database_url, "UPDATE categories SET name = 'One' WHERE id = $1", tea)
    for tab in tabs:
        await expect(tab.locator(f"#row-{tea}")).to_contain_text("One")
    # every tab can still load pages: one stream leaves the browser's connections free
    for tab in tabs:
        await tab.goto(f"{server.url}/categories/{tea}")
        await tab.goto(f"{server.url}/categories")
    await _live(tabs[-1])
    leader = next(t for t in tabs if t is logged_in_page)
    await leader.close()
    # a closed tab's requests end without an event
    open_now.difference_update([r for r in list(open_now) if owner[r] is leader])
    rest = [t for t in tabs if t is not leader]
    await _execute(database_url, "UPDATE categories SET name = 'Two' WHERE id = $1", tea)
    for tab in rest:
        await expect(tab.locator(f"#row-{tea}")).to_contain_text("Two")
    # leadership moved with each navigation and at the close; one stream open now (while
    # it moves, the browser may report the new leader's request before the old one's end)
    assert len(open_now) == 1, [r.url for r in streams]


async def test_new_rows_count_only_when_this_view_shows_them_and_appear_without_reload(
    logged_in_page: Page, server: LiveServer, database_url: str
):
    page = logged_in_page
    tea, _ = await _categories(database_url, ["Green tea", "Coffee"])
    await page.goto(server.url + "/categories?q=tea")
    await _live(page)
    await expect(page.locator("tbody tr")).to_have_count(1)
    await page.evaluate("window.samePage = true")
    # only the rows the search matches are new here
    await _categories(database_url, ["Iced tea", "Cocoa", "Mate"])
    show = page.locator("[data-changes-show]")
    await expect(show).to_have_text("1 new — show them")
    await _execute(database_url, "UPDATE categories SET name = 'Black tea' WHERE name = 'Mate'")
    await expect(show).to_have_text("2 new — show them")
    # a changed key: the old row is struck, the row under its new key is new here
    await _execute(database_url, "UPDATE categories SET id = 9999 WHERE id = $1", tea)
    await expect(page.locator(f"#row-{tea}")).to_have_class("live-deleted")
    await expect(show).to_have_text("3 new — show them")
    await show.click()
    await expect(page.locator("tbody tr")).to_have_count(3)
    await expect(page.locator("#row-9999")).to_be_visible()
    await expect(show).to_be_hidden()
    assert await page.evaluate("window.samePage === true")  # no reload
    # a statement too large to list row by row is summarised, and reloads the list
    await _execute(
        database_url,
        "INSERT INTO categories (name) SELECT 'Bulk ' || g FROM generate_series(1, 150) g",
    )
    await expect(show).to_have_text("150 rows of categories changed — reload")
    await show.click()
    await expect(page.locator("[data-changes-show]")).to_be_hidden()
    assert await page.evaluate("window.samePage === undefined")


async def test_an_edit_form_says_who_else_is_editing_the_record(
    logged_in_page: Page, server: LiveServer, database_url: str
):
    from tests.conftest import STAFF_PASSWORD
    from tests.e2e.conftest import _create_staff, log_in_page

    page = logged_in_page
    (tea,) = await _categories(database_url, ["Tea"])
    await _create_staff(database_url, "alice", "admin")
    browser = page.context.browser
    assert browser is not None
    other_context = await browser.new_context()
    other = await other_context.new_page()
    await log_in_page(other, server.url, "alice", STAFF_PASSWORD)
    await page.goto(f"{server.url}/categories/{tea}/edit")
    await other.goto(f"{server.url}/categories/{tea}/edit")
    # alice arrived second: she is told at once; the first editor at his next ping
    await expect(other.locator("[data-live-presence]")).to_have_text(
        "e2e-admin is editing this record"
    )
    await page.reload()
    await expect(page.locator("[data-live-presence]")).to_have_text("alice is editing this record")
    # alice leaves (her page says so as it goes): the first editor's next ping omits her
    await other.goto(f"{server.url}/categories")
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(10):
            while await conn.fetchval(
                "SELECT count(*) FROM live_presence WHERE username = 'alice'"
            ):
                await asyncio.sleep(0.05)
    finally:
        await conn.close()
    await page.reload()
    await expect(page.locator("[data-live-presence]")).to_be_hidden()
    await other_context.close()
