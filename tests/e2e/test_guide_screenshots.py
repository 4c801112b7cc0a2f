"""The screenshots of the README's guide for staff, taken from the states they show.

Written to tmp_path on every run; `UPDATE_GUIDE_SCREENSHOTS=1` writes them to docs/ instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Page, expect

from admin.demo.commands import load_demo_data
from tests import pg
from tests.live import LiveServer

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return DOCS if os.environ.get("UPDATE_GUIDE_SCREENSHOTS") == "1" else tmp_path


async def _shoot(page: Page, folder: Path, name: str) -> None:
    path = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000, f"{name} looks empty"


async def test_guide_screenshots(
    logged_in_page: Page, server: LiveServer, database_url: str, shots: Path
) -> None:
    page = logged_in_page
    pg.run(load_demo_data(database_url, users=60, orders=80, products=30, seed=7))
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.goto(server.url + "/orders?status=paid")
    await expect(page.locator("#list-table tbody tr").first).to_be_visible()
    await _shoot(page, shots, "guide-list.png")

    await page.goto(server.url + "/users/new")
    await page.fill("#f-email", "not an email")
    await page.get_by_role("button", name="Create user").click()
    await expect(page.locator("#error-summary")).to_be_focused()
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.emulate_media(color_scheme="dark")
    await _shoot(page, shots, "guide-form-errors-phone-dark.png")

    await page.emulate_media(color_scheme="light")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.goto(server.url + "/users")
    first = page.locator("#list-table tbody tr[data-href]").first
    href = str(await first.get_attribute("data-href"))
    await page.goto(server.url + href + "/edit")
    await _touch(database_url, int(href.rsplit("/", 1)[1]))
    await page.fill("#f-full_name", "Name typed here")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator("#conflict")).to_be_focused()
    await _shoot(page, shots, "guide-conflict.png")


async def _touch(database_url: str, user_id: int) -> None:
    """Someone else saves the user while the form is open."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE users SET full_name = 'Name saved meanwhile' WHERE id = $1", user_id
        )
    finally:
        await conn.close()
