"""Every page and main state of every table, in light and dark, at desktop and phone width:
zero axe-core violations, control and table edges at 3:1, nothing wider than a 390 px phone."""

from __future__ import annotations

import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from admin.demo.commands import load_demo_data
from tests import axe
from tests.e2e.shared import SIZES
from tests.e2e.shared import fetchval as _sql
from tests.live import LiveServer

SCHEMES = ("light", "dark")

# a change someone else saves while a form is open, per table: the conflict state
TOUCH = {
    "users": "UPDATE users SET full_name = full_name || ' (theirs)' WHERE id = $1",
    "orders": "UPDATE orders SET total = total + 1 WHERE id = $1",
    "products": "UPDATE products SET stock = stock + 1 WHERE id = $1",
    "categories": "UPDATE categories SET name = name || ' (theirs)' WHERE id = $1",
    "order_items": "UPDATE order_items SET quantity = quantity + 1 WHERE id = $1",
}


@pytest.fixture(scope="session")
def axe_source() -> str:
    return axe.axe_source()


@pytest.fixture
def seeded(database_url: str) -> str:
    from tests import pg

    pg.run(load_demo_data(database_url, users=12, orders=12, products=12, seed=11))
    return database_url


class Sweep:
    """Checks the page as it stands in every size and scheme; collects what fails."""

    def __init__(self, page: Page, source: str) -> None:
        self.page = page
        self.source = source
        self.problems: list[str] = []

    async def check(self, state: str) -> None:
        page = self.page
        for size in SIZES:
            await page.set_viewport_size(size)
            for scheme in SCHEMES:
                await page.emulate_media(color_scheme=scheme)
                where = f"{state} @{size['width']} {scheme}"
                for v in await axe.violations(page, self.source):
                    nodes = "; ".join(f"{n['target']}: {n['summary']}" for n in v["nodes"])
                    self.problems.append(f"{where}: axe {v['id']} ({v['help']}): {nodes}")
                for line in await axe.weak_borders(page):
                    self.problems.append(f"{where}: {line}")
            if size["width"] == 390:
                width = await page.evaluate("document.documentElement.scrollWidth")
                if width > 390:
                    self.problems.append(f"{state}: {width} px wide at 390 px")
        await page.set_viewport_size(SIZES[0])
        await page.emulate_media(color_scheme="light")

    async def visit(self, url: str, state: str | None = None) -> None:
        await self.page.goto(url)
        await self.check(state or url)

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)


async def _submit(page: Page) -> None:
    await page.locator("#record-form button[type=submit]").first.click()


@pytest.mark.parametrize("slug", list(TOUCH))
async def test_every_state_of_a_table_is_accessible(
    logged_in_page: Page, server: LiveServer, seeded: str, axe_source: str, slug: str
) -> None:
    page = logged_in_page
    sweep = Sweep(page, axe_source)
    base = server.url + "/" + slug
    await sweep.visit(base, f"{slug} list")
    first = page.locator("#list-table tbody tr[data-href]").first
    record = server.url + str(await first.get_attribute("data-href"))
    record_id = int(record.rsplit("/", 1)[1])
    # the row's inline editor, then the same editor after someone else saved the row
    row = page.locator(f"#row-{record_id}")
    await row.locator("summary").click()  # the row's actions menu, open
    await sweep.check(f"{slug} list, a row's menu open")
    await row.locator("[data-inline-open]").click()
    editor = page.locator(f"#row-{record_id}[data-inline-edit]")
    await expect(editor.locator("[data-inline-first]")).to_be_focused()
    await sweep.check(f"{slug} inline editor")
    await _sql(seeded, TOUCH[slug], record_id)
    await editor.locator("[data-inline-save]").click()
    await expect(editor.locator("[role=alert]")).to_be_visible()
    await sweep.check(f"{slug} inline conflict")
    await sweep.visit(base + "?q=no-such-thing-at-all", f"{slug} list, nothing found")
    await sweep.visit(record, f"{slug} record")
    has_quick_form = await page.locator("#quick-form").count() > 0
    assert has_quick_form == (slug == "orders")
    if has_quick_form:
        # a declared one-field form (an order's status) refused by a newer save
        await _sql(seeded, TOUCH[slug], record_id)
        await page.locator("#quick-form button[type=submit]").click()
        await expect(page.locator("#quick-form #conflict")).to_be_focused()
        await sweep.check(f"{slug} record, quick field conflict")
    await sweep.visit(base + "/new", f"{slug} new form")
    await _submit(page)
    await expect(page.locator("#record-form [aria-invalid=true]").first).to_be_visible()
    await sweep.check(f"{slug} new form with errors")
    await page.goto(record + "/edit")
    await sweep.check(f"{slug} edit form")
    await _sql(seeded, TOUCH[slug], record_id)
    await _submit(page)
    await expect(page.locator(".conflict")).to_be_visible()
    await sweep.check(f"{slug} conflict")
    await sweep.visit(record + "/history", f"{slug} history")
    await sweep.visit(record + "/delete", f"{slug} confirm delete")
    sweep.assert_clean()


PAGES: list[str] = ["/", "/audit", "/staff", "/account", "/users/import", "/orders/import"]


async def test_other_pages_are_accessible(
    logged_in_page: Page, server: LiveServer, seeded: str, axe_source: str, tmp_path: Path
) -> None:
    page = logged_in_page
    sweep = Sweep(page, axe_source)
    for path in PAGES:
        await sweep.visit(server.url + path, path)
    # a refused import's list of problems
    await page.goto(server.url + "/users/import")
    bad = tmp_path / "bad.csv"
    bad.write_text("username,email,is_active\nann,ann@example.com,perhaps\n", encoding="utf-8")
    await page.set_input_files("#import-file", str(bad))
    await page.click("#import-form button[type=submit]")
    await page.locator("#import-result [data-outcome=rejected]").wait_for()
    await sweep.check("users import, rejected")
    # a workbook chosen: the preview says what it is instead of a mapping
    workbook = tmp_path / "users.xlsx"
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet>\n" * 50)
    await page.goto(server.url + "/users/import")
    await page.set_input_files("#import-file", str(workbook))
    await page.locator("#import-preview [data-refused]").wait_for()
    await sweep.check("users import, a workbook previewed")
    # an export asked for by another site: a page with a Download button, nothing exported
    link = f'<a href="{server.url}/users/export.csv">export</a>'
    await page.route(
        "http://elsewhere.example/",
        lambda route: route.fulfill(content_type="text/html", body=link),
    )
    await page.goto("http://elsewhere.example/")
    await page.click("a")
    await expect(page.get_by_role("button", name="Download")).to_be_visible()
    await sweep.check("users export, asked for from elsewhere")
    await sweep.visit(server.url + "/users/999999", "not found")
    await page.goto(server.url + "/orders")
    await page.keyboard.press("?")
    await expect(page.locator("#shortcuts")).to_be_visible()
    await sweep.check("shortcut overlay")
    await page.keyboard.press("Escape")
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url("**/login*")
    await sweep.check("login")
    sweep.assert_clean()


Check = Callable[[], Awaitable[None]]
