"""Browser: choosing a file shows how it will be read; the mapping is changed on the page;
"Validate only" writes nothing; a rejected file's problems download as CSV."""

from __future__ import annotations

import zipfile
from pathlib import Path

import asyncpg
from playwright.async_api import Page

from tests.live import LiveServer


async def _count(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM users"))
    finally:
        await conn.close()


async def test_preview_mapping_validate_then_import(
    logged_in_page: Page, server: LiveServer, database_url: str, tmp_path: Path
):
    page = logged_in_page
    await page.goto(server.url + "/users/import")
    source = tmp_path / "people.csv"
    source.write_text("Login;E-mail;Nickname\nann;ann@example.com;Annie\n", encoding="utf-8")
    await page.set_input_files("#import-file", str(source))
    preview = page.locator("#import-preview [data-preview]")
    await preview.wait_for()
    assert "semicolon (detected)" in await preview.locator("[data-format]").inner_text()
    # Login matches nothing: choose what it fills
    assert await page.locator("#map-1").input_value() == "-"
    await page.select_option("#map-1", "username")
    await page.click("#import-form button[data-dry-run]")
    valid = page.locator("#import-result [data-outcome=valid]")
    await valid.wait_for()
    assert "nothing was written" in (await valid.inner_text()).lower()
    assert await _count(database_url) == 0
    await page.click("#import-form button.primary")
    await page.locator("#import-result [data-outcome=imported]").wait_for()
    assert await _count(database_url) == 1


async def test_rejected_file_offers_every_problem_as_csv(
    logged_in_page: Page, server: LiveServer, tmp_path: Path
):
    page = logged_in_page
    await page.goto(server.url + "/users/import")
    bad = tmp_path / "bad.csv"
    bad.write_text("username,email\nann\nBO B,bob@example.com\n", encoding="utf-8")
    await page.set_input_files("#import-file", str(bad))
    await page.click("#import-form button.primary")
    rejected = page.locator("#import-result [data-outcome=rejected]")
    await rejected.wait_for()
    assert (
        await rejected.locator("[data-summary]").inner_text()
    ) == "Nothing imported: 2 problems."
    async with page.expect_download() as info:
        await rejected.locator("[data-error-file]").click()
    saved = tmp_path / "problems.csv"
    await (await info.value).save_as(saved)
    lines = saved.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "username,email,import line,import problem"
    assert [line.split(",")[2] for line in lines[1:]] == ["2", "3"]


async def test_phases_show_and_cancel_rolls_back(
    logged_in_page: Page, server: LiveServer, database_url: str, tmp_path: Path
):
    page = logged_in_page
    await page.goto(server.url + "/users/import")
    source = tmp_path / "users.csv"
    # a column the table lacks is ignored, which keeps the import off the one-pass COPY
    # (admin/csvio/direct.py): its rows are read and checked before they are written
    source.write_text(
        "username,email,remark\n" + "".join(f"u{i:05d},u{i}@x.org,r\n" for i in range(5000)),
        encoding="utf-8",
    )
    await page.set_input_files("#import-file", str(source))
    # the preview's mapping is what leaves `remark` out: import once it is there
    await page.locator("#import-preview [data-preview]").wait_for()
    holder = await asyncpg.connect(database_url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        # the import reads the file, then waits for this lock to write
        await holder.execute("LOCK TABLE users IN SHARE MODE")
        await page.click("#import-form button.primary")
        checked = "Rows read and checked: 5,000 rows"
        await page.locator("#import-phases li", has_text=checked).wait_for()
        await page.click("#import-cancel")
        cancelled = page.locator("#import-result [data-outcome=cancelled]")
        await cancelled.wait_for()
        assert "nothing was imported" in (await cancelled.inner_text()).lower()
        await transaction.rollback()
    finally:
        await holder.close()
    assert await _count(database_url) == 0


async def test_changing_encoding_and_delimiter_rereads_the_preview_and_the_import(
    logged_in_page: Page, server: LiveServer, database_url: str, tmp_path: Path
):
    page = logged_in_page
    await page.goto(server.url + "/users/import")
    source = tmp_path / "accents.csv"
    source.write_text("username,email,full_name\nzoe,zoe@example.com,Zoë\n", encoding="utf-8")
    await page.set_input_files("#import-file", str(source))
    preview = page.locator("#import-preview [data-preview]")
    await preview.wait_for()
    detected = await preview.locator("[data-format]").inner_text()
    assert "UTF-8 (detected), comma (detected)" in detected
    cell = preview.locator("tbody tr td").nth(2)
    assert await cell.inner_text() == "Zoë"

    # read as Windows-1252, the two bytes of ë become two characters
    await page.select_option("#preview-encoding", "windows-1252")
    await page.locator("#import-preview [data-format]", has_text="Windows-1252,").wait_for()
    assert await page.locator("#import-preview tbody tr td").nth(2).inner_text() == "ZoÃ«"
    # split on semicolons, the header is one field
    await page.select_option("#preview-delimiter", ";")
    await page.locator("#import-preview [data-format]", has_text="semicolon-separated").wait_for()
    assert await page.locator("#import-preview thead tr").first.locator("th").count() == 1

    await page.select_option("#preview-delimiter", ",")
    await page.locator("#import-preview [data-format]", has_text="comma-separated").wait_for()
    await page.select_option("#preview-encoding", "utf-8")
    await page.locator("#import-preview [data-format]", has_text="Read as UTF-8,").wait_for()
    await page.click("#import-form button.primary")
    await page.locator("#import-result [data-outcome=imported]").wait_for()
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT full_name FROM users WHERE username = 'zoe'") == "Zoë"
    finally:
        await conn.close()


async def test_a_workbook_is_named_before_it_is_sent_and_refused_when_it_is(
    logged_in_page: Page, server: LiveServer, database_url: str, tmp_path: Path
):
    page = logged_in_page
    await page.goto(server.url + "/users/import")
    workbook = tmp_path / "users.xlsx"
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet>\n" * 50)
    await page.set_input_files("#import-file", str(workbook))
    refused = page.locator("#import-preview [data-preview] [data-refused]")
    await refused.wait_for()
    assert (await refused.inner_text()).startswith("the file is a ZIP archive")
    assert await page.locator("#import-preview [data-map]").count() == 0
    await page.click("#import-form button.primary")
    rejected = page.locator("#import-result [data-outcome=rejected]")
    await rejected.wait_for()
    assert "the file is a ZIP archive" in await rejected.inner_text()
    assert await _count(database_url) == 0
