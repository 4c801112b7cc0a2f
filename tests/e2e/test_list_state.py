"""Browser: one list state (sort kept across a search, page size, back and forward), and the
selection bar (header box, shift-click ranges, all matching, actions wait for a selection),
on a desktop and a phone."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from playwright.async_api import Page, Route, expect

from tests.e2e.shared import SIZES
from tests.e2e.waits import url_has
from tests.live import LiveServer


async def _seed(database_url: str, n: int = 60) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        # emails sort the other way round from ids: a sort by email is visible
        await conn.execute(
            """
            INSERT INTO users (username, email, full_name)
            SELECT 'user' || lpad(g::text, greatest(3, length($1::text)), '0'),
                   'm' || lpad((100000 - g)::text, 6, '0') || '@example.com', 'Person ' || g
            FROM generate_series(1, $1) AS g
            """,
            n,
        )
    finally:
        await conn.close()


async def _usernames(page: Page) -> list[str]:
    cells = page.locator("#list-table tbody tr td:nth-child(3)")
    return [t.strip() for t in await cells.all_inner_texts()]


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_sort_survives_a_search_and_back_restores_it(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict[str, int]
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await _seed(database_url)
    await page.goto(server.url + "/users")
    await page.locator("#list-table thead").get_by_role("link", name="Email").click()
    await expect(page.locator("#list-table thead th[aria-sort=ascending]")).to_contain_text("Email")
    await url_has(page, "sort=email")
    first_by_email = await _usernames(page)
    assert first_by_email[0] == "user060"
    await page.fill("#list-search", "user05")
    await expect(page.locator("#list-table tbody tr")).to_have_count(10)
    # sorted by email still: user059 has the smallest email of the ten
    assert (await _usernames(page))[0] == "user059"
    await url_has(page, "sort=email", "q=user05")
    # the page size travels with the search too
    await page.fill("#list-search", "")
    await expect(page.locator("#list-table tbody tr")).to_have_count(50)
    await page.select_option("#list-table select[name=limit]", "25")
    await expect(page.locator("#list-table tbody tr")).to_have_count(25)
    await url_has(page, "limit=25", "sort=email")
    await page.locator("#list-table nav[aria-label=Pages]").get_by_role("link", name="Next").click()
    await expect(page.locator("#list-position")).to_contain_text("26\u201350 of 60")
    assert (await _usernames(page))[0] == "user035"
    await page.fill("#list-search", "user01")
    await expect(page.locator("#list-table tbody tr")).to_have_count(10)
    assert (await _usernames(page))[0] == "user019"
    # back: the second page by email, and the search box empty again
    await page.go_back()
    await expect(page.locator("#list-position")).to_contain_text("26\u201350 of 60")
    await expect(page.locator("#list-search")).to_have_value("")
    await page.go_forward()
    await expect(page.locator("#list-table tbody tr")).to_have_count(10)
    await expect(page.locator("#list-search")).to_have_value("user01")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= size["width"]


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_selection_bar(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict[str, int]
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await _seed(database_url)
    await page.goto(server.url + "/users?sort=email&limit=25")
    bar = page.locator("#bulk-form")
    apply = bar.get_by_role("button", name="Apply…")
    await expect(apply).to_be_disabled()
    await expect(bar).to_contain_text("0 selected")
    boxes = page.locator("#list-table tbody input[name=ids]")
    await boxes.nth(1).click()
    await boxes.nth(4).click(modifiers=["Shift"])
    await expect(bar).to_contain_text("4 selected")
    await expect(apply).to_be_enabled()
    header = page.locator("[data-select-page]")
    assert await header.evaluate("box => box.indeterminate")
    await bar.get_by_role("button", name="Clear").click()
    await expect(bar).to_contain_text("0 selected")
    await expect(apply).to_be_disabled()
    await header.click()
    await expect(bar).to_contain_text("25 selected")
    await bar.get_by_role("button", name="Select all 60 users").click()
    await expect(bar).to_contain_text("All 60 users selected")
    await page.select_option("#bulk-action", "deactivate")
    await apply.click()
    await expect(page.locator("h1")).to_have_text("Deactivate: 60 users?")
    await page.get_by_role("button", name="Deactivate: 60 users").click()
    # back on the same list: sorted by email, 25 a page
    await expect(page.locator(".flash")).to_contain_text("60 users changed")
    await url_has(page, "sort=email", "limit=25")
    await expect(page.locator("#list-table tbody tr")).to_have_count(25)


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_a_record_s_breadcrumb_returns_to_the_same_list_page(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict[str, int]
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await _seed(database_url)
    await page.goto(server.url + "/users?sort=email&limit=25")
    await page.locator("#list-table nav[aria-label=Pages]").get_by_role("link", name="Next").click()
    await expect(page.locator("#list-position")).to_contain_text("26\u201350 of 60")
    await page.locator("#list-table tbody tr").first.locator("td.num a").click()
    await expect(page.locator("h1")).to_contain_text("user035")
    await page.locator(".breadcrumbs").get_by_role("link", name="Users").click()
    await expect(page.locator("#list-position")).to_contain_text("26\u201350 of 60")
    await url_has(page, "sort=email", "limit=25")
    assert (await _usernames(page))[0] == "user035"


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_confirm_names_the_records_then_undo_puts_them_back(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict[str, int]
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await _seed(database_url, 5)
    await page.goto(server.url + "/users?q=user00")
    boxes = page.locator("#list-table tbody input[name=ids]")
    for i in (0, 1, 2):
        await boxes.nth(i).check()
    await page.select_option("#bulk-action", "deactivate")
    await page.locator("#bulk-form").get_by_role("button", name="Apply…").click()
    await expect(page.locator("h1")).to_have_text("Deactivate: 3 users?")
    await expect(page.locator(".bulk-preview li")).to_have_count(3)
    await expect(page.locator(".bulk-preview")).to_contain_text("user001")
    await page.get_by_role("button", name="Deactivate: 3 users").click()
    await expect(page.locator(".flash")).to_contain_text("Deactivate: 3 users changed")
    await url_has(page, "q=user00")
    await expect(page.locator("#list-table")).to_contain_text("inactive")
    await page.locator(".undo-bar").get_by_role("button", name="Undo").click()
    await expect(page.locator(".flash")).to_contain_text("Undone: 3 users put back")
    await expect(page.locator(".undo-bar")).to_have_count(0)
    await expect(page.locator("#list-table")).not_to_contain_text("inactive")
    await url_has(page, "q=user00")


async def test_a_delete_blocked_by_orders_offers_deactivate(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    await _seed(database_url, 3)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO orders (user_id, total, status)"
            " SELECT id, 5, 'paid' FROM users WHERE username = 'user002'"
        )
    finally:
        await conn.close()
    await page.goto(server.url + "/users")
    await page.locator("[data-select-page]").check()
    await page.select_option("#bulk-action", "delete")
    await page.locator("#bulk-form").get_by_role("button", name="Apply…").click()
    await expect(page.locator(".bulk-blockers")).to_contain_text(
        "1 of them have orders: nothing is deleted while they do."
    )
    await expect(page.get_by_role("button", name="Delete: 3 users")).to_be_disabled()
    await page.get_by_role("button", name="Deactivate instead…").click()
    await expect(page.locator("h1")).to_have_text("Deactivate: 3 users?")


@pytest.mark.parametrize("path", ["/users", "/orders", "/products", "/categories", "/order_items"])
async def test_every_list_is_cards_on_a_phone(
    logged_in_page: Page, server: LiveServer, database_url: str, path: str
) -> None:
    page = logged_in_page
    await _seed(database_url, 3)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """
            INSERT INTO categories (name) VALUES ('Lamps');
            INSERT INTO products (sku, name, price, stock, category_id)
            SELECT 'SKU-' || g, 'A rather long product name for a phone ' || g, 12.5, 3,
                   (SELECT id FROM categories LIMIT 1) FROM generate_series(1, 3) AS g;
            INSERT INTO orders (user_id, total, status) SELECT id, 37.5, 'pending' FROM users;
            INSERT INTO order_items (order_id, product_id, quantity, unit_price)
            SELECT o.id, p.id, 1, 12.5 FROM orders o CROSS JOIN products p;
            """
        )
    finally:
        await conn.close()
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(server.url + path)
    row = page.locator("#list-table tbody tr").first
    assert await row.evaluate("r => getComputedStyle(r).display") == "block"
    first = row.locator("td[data-label]").first
    await expect(first).to_have_attribute("data-label", "ID")
    # the row's actions are in a menu, the filters in a drawer
    await expect(row.get_by_role("link", name="Edit")).to_be_hidden()
    await row.locator("summary").click()
    await expect(row.get_by_role("link", name="Edit")).to_be_visible()
    toggle = page.locator("[data-filters-toggle]")
    if await toggle.count():
        await expect(toggle).to_have_attribute("aria-expanded", "false")
        await toggle.click()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{path} is {width} px wide"


async def test_a_batched_bulk_action_shows_progress_and_stops_when_asked(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    await _seed(database_url, 4500)
    held = asyncio.Event()
    release = asyncio.Event()
    seen: list[str] = []

    async def hold_the_second_batch(route: Route) -> None:
        body = route.request.post_data or ""
        seen.append(body)
        if "batched=1" in body and "done=2000" in body and "stop=1" not in body:
            held.set()
            await release.wait()
        await route.continue_()

    await page.route("**/users/bulk", hold_the_second_batch)
    await page.goto(server.url + "/users")
    await page.locator("[data-select-page]").check()
    await page.locator("#bulk-form").get_by_role("button", name="Select all 4,500 users").click()
    await page.select_option("#bulk-action", "deactivate")
    await page.locator("#bulk-form").get_by_role("button", name="Apply…").click()
    await expect(page.locator(".bulk-confirm")).to_contain_text("runs in batches of 2,000")
    await page.get_by_role("button", name="Deactivate: 4,500 users").click()
    await expect(page.locator("#bulk-progress")).to_contain_text("2,000 of 4,500")
    await asyncio.wait_for(held.wait(), 10)
    await page.get_by_role("button", name="Stop").click()
    await expect(page.get_by_role("button", name="Stopping after this batch…")).to_be_disabled()
    release.set()
    await expect(page.locator(".flash")).to_contain_text(
        "Stopped: Deactivate reached 4,000 of 4,500 users (4,000 changed)"
    )
    await expect(page.locator(".undo-bar")).to_contain_text("Deactivate: 4,000 users")
    assert any("stop=1" in body for body in seen)
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users WHERE NOT is_active") == 4000
    finally:
        await conn.close()


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_the_filter_builder_adds_filters_that_searches_and_sorts_keep(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict[str, int]
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await _seed(database_url)
    await page.goto(server.url + "/users?sort=email")
    await page.locator("[data-filter-builder] summary").click()
    builder = page.locator("#filter-builder")
    await builder.get_by_label("Column").select_option("created_at")
    # a date column offers a range with a date input, and no "contains"
    await expect(builder.get_by_label("Value")).to_have_attribute("type", "date")
    assert await builder.locator("option[value=contains]").evaluate("o => o.disabled")
    await builder.get_by_label("Column").select_option("username")
    await builder.get_by_label("Condition").select_option("in")
    await builder.get_by_label("Value").fill("user001, user002, user010, user011")
    await builder.get_by_role("button", name="Add filter").click()
    await expect(page.locator("#list-table tbody tr")).to_have_count(4)
    await expect(page.locator(".filter-chips")).to_contain_text(
        "Username is one of user001, user002, user010, user011"
    )
    await url_has(page, "f.username.in=", "sort=email")
    assert (await _usernames(page))[0] == "user011"  # still by email
    await page.fill("#list-search", "user01")
    await expect(page.locator("#list-table tbody tr")).to_have_count(2)
    await url_has(page, "f.username.in=")
    await page.locator(".filter-chips").get_by_role("link").click()
    await expect(page.locator(".filter-chips")).to_have_count(0)
    await expect(page.locator("#list-table tbody tr")).to_have_count(10)
    await url_has(page, "q=user01", absent=("f.username",))


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_a_saved_view_reopens_its_filters_sort_and_size(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict[str, int]
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await _seed(database_url)
    await page.goto(server.url + "/users?f.username.contains=user05&sort=email&limit=25")
    await page.locator(".save-view summary").click()
    await page.locator("[data-save-view]").get_by_label("Name").fill("Zeros by email")
    await page.locator("[data-save-view]").get_by_label("Share with everyone").check()
    await page.get_by_role("button", name="Save view").click()
    await expect(page.locator(".flash")).to_contain_text("Saved the view “Zeros by email”")
    await page.goto(server.url + "/users")
    await expect(page.locator("#list-position")).to_contain_text("1\u201350 of 60")
    await page.locator(".saved-views").get_by_role("link", name="Zeros by email").click()
    await expect(page.locator("#list-position")).to_contain_text("1\u201310 of 10")
    await expect(page.locator(".filter-chips")).to_contain_text("Username contains user05")
    await expect(page.locator("#list-table select[name=limit]")).to_have_value("25")
    assert (await _usernames(page))[0] == "user059"


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_the_column_chooser_s_columns_survive_a_search(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict[str, int]
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await _seed(database_url)
    await page.goto(server.url + "/users?sort=email")
    await page.locator("[data-column-chooser] summary").click()
    chooser = page.locator("#column-chooser")
    await chooser.get_by_label("Full name").uncheck()
    await chooser.get_by_label("Created").uncheck()
    await chooser.get_by_role("button", name="Show", exact=True).click()
    header = page.locator("#list-table thead")
    await expect(header).not_to_contain_text("Full name")
    await url_has(page, "cols=", "sort=email")
    await page.fill("#list-search", "user05")
    await expect(page.locator("#list-table tbody tr")).to_have_count(10)
    await expect(header).not_to_contain_text("Created")
    assert (await _usernames(page))[0] == "user059"
    await chooser.get_by_role("button", name="The usual columns").click()
    await expect(header).to_contain_text("Full name")
    await expect(page.locator("#list-table tbody tr")).to_have_count(10)
    await url_has(page, "q=user05", absent=("cols=",))
