"""Browser: a refused form's summary takes focus and leads to its fields, conflicts keep every
choice in view, focus and announcements after swaps, the shortcut overlay."""

from __future__ import annotations

import itertools

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.e2e.shared import SIZES
from tests.e2e.shared import fetchval as _sql
from tests.live import LiveServer


async def _seed(database_url: str) -> int:
    await _sql(
        database_url,
        """
        INSERT INTO users (username, email, full_name)
        SELECT 'user' || g, 'user' || g || '@example.com', 'Person number ' || g
        FROM generate_series(1, 12) AS g
        """,
    )
    return int(str(await _sql(database_url, "SELECT id FROM users WHERE username = 'user3'")))


async def _focused_id(page: Page) -> str:
    return str(await page.evaluate("document.activeElement && document.activeElement.id"))


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_error_summary_takes_focus_and_links_to_fields(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict[str, int]
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    await page.goto(server.url + "/users/new")
    # the rule is there before any mistake
    await expect(page.locator("#f-username-hint")).to_contain_text("lowercase letters")
    await page.fill("#f-email", "not an email")
    checks: list[str] = []
    page.on(
        "request",
        lambda request: checks.append(request.url) if "/validate" in request.url else None,
    )
    await page.get_by_role("button", name="Create user").click()
    summary = page.locator("#error-summary")
    await expect(summary).to_be_focused()
    # leaving the field for the submit button checks nothing on its own: a message appearing
    # there would move the button from under the pointer mid-click
    assert checks == []
    await expect(summary.get_by_role("link", name="Username is required.")).to_be_visible()
    field = page.locator("#f-username")
    await expect(field).to_have_attribute("aria-invalid", "true")
    border = await field.evaluate("el => getComputedStyle(el).borderTopWidth")
    assert border == "2px"  # visibly marked, not only for screen readers
    await summary.get_by_role("link", name="Email: Enter a valid email address").click()
    await expect(page.locator("#f-email")).to_be_focused()
    # fixing the field clears its mark when the field is left
    await page.fill("#f-email", "ok@example.com")
    await page.keyboard.press("Tab")
    await expect(page.locator("#f-email")).not_to_have_attribute("aria-invalid", "true")
    if size["width"] == 390:
        boxes = await page.eval_on_selector_all(
            "#record-form .field",
            "els => els.map(e => [e.offsetTop, e.offsetTop + e.offsetHeight])",
        )
        # one column: each field starts below the one before it
        assert all(b[0] >= a[1] - 1 for a, b in itertools.pairwise(boxes)), boxes
    await page.fill("#f-username", "newbie")
    await page.get_by_role("button", name="Save and add another").click()
    await page.wait_for_url(server.url + "/users/new**")
    await expect(page.locator("#flashes")).to_contain_text("User newbie created.")
    assert await _sql(database_url, "SELECT count(*) FROM users WHERE username = 'newbie'") == 1


async def test_conflict_notice_takes_focus_and_the_saved_version_is_the_default(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    user_id = await _seed(database_url)
    await page.goto(server.url + f"/users/{user_id}/edit")
    await _sql(database_url, "UPDATE users SET full_name = 'Theirs' WHERE id = $1", user_id)
    await page.fill("#f-full_name", "Mine")
    await page.get_by_role("button", name="Save", exact=True).click()
    notice = page.locator("#conflict")
    await expect(notice).to_be_focused()
    for name in ("Use the saved version", "Overwrite with mine"):
        await expect(notice.get_by_role("button", name=name)).to_be_visible()
    await expect(notice.get_by_role("link", name="Cancel")).to_be_visible()
    mine = notice.locator("tr.differs td.mine")
    theirs = notice.locator("tr.differs td.theirs")
    await expect(mine).to_contain_text("Mine")
    await expect(theirs).to_contain_text("Theirs")
    colours = [
        await cell.evaluate("el => getComputedStyle(el).backgroundColor") for cell in (mine, theirs)
    ]
    assert colours[0] != colours[1], "yours and saved meanwhile look the same"
    # Enter in a field presses the first button: the saved version, nothing written
    await page.locator("#f-full_name").press("Enter")
    await page.wait_for_url(server.url + f"/users/{user_id}/edit")
    await expect(page.locator("#f-full_name")).to_have_value("Theirs")
    await expect(page.locator("#conflict")).to_have_count(0)
    assert await _sql(database_url, "SELECT full_name FROM users WHERE id = $1", user_id) == (
        "Theirs"
    )


@pytest.mark.parametrize("size", SIZES, ids=["desktop", "phone"])
async def test_inline_conflict_keeps_its_choices_in_view(
    logged_in_page: Page, server: LiveServer, database_url: str, size: dict[str, int]
) -> None:
    page = logged_in_page
    await page.set_viewport_size(size)
    user_id = await _seed(database_url)
    await page.goto(server.url + "/users?q=user3")
    row = page.locator(f"#row-{user_id}")
    await row.locator("summary").click()  # the row's actions menu
    await row.get_by_role("link", name="Edit").click()
    await expect(row.locator("input[name=username]")).to_be_focused()
    await _sql(database_url, "UPDATE users SET full_name = 'Theirs' WHERE id = $1", user_id)
    await row.locator("input[name=full_name]").fill("Mine")
    await row.locator("input[name=full_name]").press("Enter")
    await expect(row).to_contain_text("Saved meanwhile: Theirs")
    wrap = await page.locator(".table-wrap").bounding_box()
    assert wrap is not None
    right = min(wrap["x"] + wrap["width"], size["width"])
    for name in ("Use the saved version", "Overwrite with mine", "Cancel"):
        box = await row.get_by_role("button", name=name).bounding_box()
        assert box is not None, name
        assert box["x"] >= 0 and box["x"] + box["width"] <= right + 1, f"{name} is off the edge"
    # Enter now presses the safe choice: the saved values come back, nothing is written
    await row.locator("input[name=full_name]").press("Enter")
    await expect(row.locator("input[name=full_name]")).to_have_value("Theirs")
    await expect(row.locator("[role=alert]")).to_have_count(0)
    assert await _sql(database_url, "SELECT full_name FROM users WHERE id = $1", user_id) == (
        "Theirs"
    )


async def test_focus_and_announcements_after_swaps(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    user_id = await _seed(database_url)
    await page.goto(server.url + "/users")
    announcer = page.locator("#announcer")
    # a boosted navigation: focus on the new page's heading
    await page.locator(f"#row-{user_id} a[href='/users/{user_id}']").first.click()
    await page.wait_for_url(server.url + f"/users/{user_id}")
    await expect(page.locator("main h1")).to_be_focused()
    await expect(announcer).to_have_text("user3")
    # a search: the count is announced, focus stays in the box
    await page.goto(server.url + "/users")
    await page.keyboard.press("/")
    await page.keyboard.type("user1")
    await expect(page.locator("#list-table tbody tr")).to_have_count(4)
    await expect(announcer).to_contain_text("4 users")
    await expect(page.locator("#list-search")).to_be_focused()
    # an inline save is confirmed
    first_id = await _sql(database_url, "SELECT id FROM users WHERE username = 'user1'")
    await page.goto(server.url + "/users?q=user1")
    row = page.locator(f"#row-{first_id}")
    await row.locator("summary").click()  # the row's actions menu
    await row.get_by_role("link", name="Edit").click()
    await expect(row.locator("input[name=username]")).to_be_focused()
    await row.locator("input[name=full_name]").fill("Renamed")
    await row.locator("input[name=full_name]").press("Enter")
    await expect(announcer).to_contain_text("Saved user1")


async def test_shortcuts_overlay_and_keys(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    await _seed(database_url)
    await page.goto(server.url + "/")
    first_button = page.locator("header button").first
    await expect(first_button).not_to_have_text("Log out")
    await page.keyboard.press("?")
    dialog = page.locator("#shortcuts")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("g u Users")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await page.keyboard.press("g")
    await page.keyboard.press("u")
    await page.wait_for_url(server.url + "/users")
    await expect(page.locator("#list-table tbody tr")).to_have_count(12)
    await expect(page.locator("main h1")).to_be_focused()
    await page.keyboard.press("j")
    await expect(page.locator("#list-table tbody tr").nth(0)).to_be_focused()
    await page.keyboard.press("j")
    await expect(page.locator("#list-table tbody tr").nth(1)).to_be_focused()
    await page.keyboard.press("k")
    await expect(page.locator("#list-table tbody tr").nth(0)).to_be_focused()
    await page.keyboard.press("x")
    box = page.locator("#list-table tbody tr").nth(0).locator("input[type=checkbox]")
    await expect(box).to_be_checked()
    await page.keyboard.press("n")
    await page.wait_for_url(server.url + "/users/new**")


async def test_record_times_read_relative_with_the_exact_time_on_hover(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    user_id = await _seed(database_url)
    await _sql(
        database_url,
        "UPDATE users SET created_at = now() - interval '3 hours' WHERE id = $1",
        user_id,
    )
    await page.goto(server.url + f"/users/{user_id}")
    created = page.locator("dl.details time").first
    await expect(created).to_contain_text("3 hours ago")
    exact = await created.get_attribute("title")
    assert exact and exact.endswith(" UTC"), exact
    await expect(created.locator(".visually-hidden")).to_have_text(f" ({exact})")


async def test_a_row_deleted_from_the_list_is_announced_and_focus_is_kept(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    user_id = await _seed(database_url)
    await page.goto(server.url + "/users?q=user3")
    page.on("dialog", lambda dialog: dialog.accept())
    await page.locator(f"#row-{user_id} summary").click()  # the row's actions menu
    await page.locator(f"#row-{user_id}").get_by_role("link", name="Delete").click()
    await expect(page.locator(f"#row-{user_id}")).to_have_count(0)
    await expect(page.locator("#announcer")).to_have_text(f"Deleted user {user_id}.")
    # focus does not fall back to the page's body: it stays in the list. A function,
    # not an expression: Playwright evaluates it once, while each later poll of an
    # expression is an eval() the page's CSP refuses.
    await page.wait_for_function(
        "() => document.activeElement !== document.body"
        " && document.getElementById('list-table').contains(document.activeElement)"
    )
    assert await _sql(database_url, "SELECT count(*) FROM users WHERE id = $1", user_id) == 0


async def test_a_quick_field_conflict_offers_the_saved_version(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    user_id = await _seed(database_url)
    order_id = await _sql(
        database_url,
        "INSERT INTO orders (user_id, status, total) VALUES ($1, 'pending', 10) RETURNING id",
        user_id,
    )
    await page.goto(server.url + f"/orders/{order_id}")
    await _sql(database_url, "UPDATE orders SET status = 'cancelled' WHERE id = $1", order_id)
    await page.select_option("#quick-status", "paid")
    await page.get_by_role("button", name="Change status").click()
    notice = page.locator("#quick-form #conflict")
    await expect(notice).to_be_focused()
    await expect(notice.locator("tr.differs td.mine")).to_contain_text("paid")
    await expect(notice.locator("tr.differs td.theirs")).to_contain_text("cancelled")
    await notice.get_by_role("button", name="Use the saved version").click()
    await expect(page.locator("#flashes")).to_contain_text("this is the saved value")
    await expect(page.locator("#quick-status")).to_have_value("cancelled")
    assert await _sql(database_url, "SELECT status FROM orders WHERE id = $1", order_id) == (
        "cancelled"
    )


async def test_back_puts_focus_on_the_restored_page_heading(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    user_id = await _seed(database_url)
    await page.goto(server.url + "/users")
    await page.locator(f"#row-{user_id} a[href='/users/{user_id}']").first.click()
    await expect(page.locator("main h1")).to_have_text("user3")
    await page.go_back()
    await page.wait_for_url(server.url + "/users")
    await expect(page.locator("main h1")).to_have_text("Users")
    await expect(page.locator("main h1")).to_be_focused()
    await expect(page.locator("#announcer")).to_have_text("Users")


async def test_live_dashboard_updates_never_move_focus(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    from tests.live_helpers import add_customer, insert_orders

    page = logged_in_page
    await expect(page.locator("[data-live-state]")).to_have_attribute("data-live-state", "live")
    # nothing focused: a reader looking at the page, not at a control
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    conn = await asyncpg.connect(database_url)
    try:
        customer = await add_customer(conn)
        await insert_orders(conn, customer, 2)
    finally:
        await conn.close()
    await expect(page.locator("#feed li")).to_have_count(2)
    await expect(page.locator('[data-counter="total"]')).to_have_text("2")
    await page.wait_for_timeout(300)  # past any focus move a settle would make
    assert await page.evaluate("document.activeElement === document.body")


async def test_create_and_edit_with_the_keyboard_alone(
    logged_in_page: Page, server: LiveServer, database_url: str
) -> None:
    page = logged_in_page
    await _seed(database_url)
    await page.goto(server.url + "/users")
    await page.keyboard.press("n")
    await page.wait_for_url(server.url + "/users/new**")
    await expect(page.locator("main h1")).to_be_focused()
    # from the heading, Tab reaches the first field; Enter in a field submits
    await page.keyboard.press("Tab")
    await expect(page.locator("#f-username")).to_be_focused()
    await page.keyboard.type("keyboard.only")
    await page.keyboard.press("Tab")
    await page.keyboard.type("keys@example.com")
    await page.keyboard.press("Enter")
    # a form opened from the list returns to it
    await page.wait_for_url(server.url + "/users")
    await expect(page.locator("main h1")).to_have_text("Users")
    await expect(page.locator("main h1")).to_be_focused()
    await expect(page.locator("#announcer")).to_contain_text("User keyboard.only created.")
    # to the record by keyboard: search, the first row, Enter, then e to edit it
    await page.keyboard.press("/")
    await page.keyboard.type("keyboard.only")
    await expect(page.locator("#list-table tbody tr")).to_have_count(1)
    await page.keyboard.press("Escape")
    await page.keyboard.press("j")
    await page.keyboard.press("Enter")
    await expect(page.locator("main h1")).to_have_text("keyboard.only")
    await page.keyboard.press("e")
    await expect(page.locator("main h1")).to_have_text("Edit keyboard.only")
    await expect(page.locator("main h1")).to_be_focused()
    for _ in range(10):
        await page.keyboard.press("Tab")
        if await _focused_id(page) == "f-full_name":
            break
    await expect(page.locator("#f-full_name")).to_be_focused()
    await page.keyboard.type("Typed Only")
    await page.keyboard.press("Enter")
    await expect(page.locator("#announcer")).to_contain_text("User keyboard.only saved.")
    stored = await _sql(
        database_url, "SELECT full_name FROM users WHERE username = 'keyboard.only'"
    )
    assert stored == "Typed Only"
