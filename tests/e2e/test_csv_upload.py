"""Browser: upload a CSV with the progress bar, see the result, download the export."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from playwright.async_api import Page

from tests.live import LiveServer

ROWS = 30_000


def _users_csv(path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        out.write("username,email,full_name,is_active\n")
        for i in range(ROWS):
            out.write(f'user{i:06d},user{i}@example.com,"Name {i}, Jr.",true\n')
    return path


async def test_upload_shows_progress_and_result_then_export_downloads(
    logged_in_page: Page, server: LiveServer, database_url: str, tmp_path: Path
):
    page = logged_in_page
    await page.goto(server.url + "/users/import")
    progress = page.locator("#import-progress")
    assert await progress.is_hidden()
    await page.set_input_files("#import-file", str(_users_csv(tmp_path / "users.csv")))
    await page.click("#import-form button[type=submit]")
    await progress.wait_for(state="visible")
    result = page.locator("#import-result [data-outcome=imported]")
    await result.wait_for()
    assert await progress.get_attribute("value") == "100"
    assert await result.locator("[data-count=inserted]").inner_text() == str(ROWS)
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users") == ROWS
    finally:
        await conn.close()

    async with page.expect_download() as info:
        await page.click("a[href='/users/export.csv']")
    download = await info.value
    assert download.suggested_filename.startswith("users-")
    saved = tmp_path / "export.csv"
    await download.save_as(saved)
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,username,email,full_name,is_active,created_at,version"
    assert len(lines) == ROWS + 1


async def test_rejected_upload_shows_the_errors_table(logged_in_page: Page, server: LiveServer,
                                                      tmp_path: Path):  # fmt: skip
    page = logged_in_page
    await page.goto(server.url + "/users/import")
    bad = tmp_path / "bad.csv"
    bad.write_text("username,email,is_active\nann,ann@example.com,perhaps\n", encoding="utf-8")
    await page.set_input_files("#import-file", str(bad))
    await page.click("#import-form button[type=submit]")
    rejected = page.locator("#import-result [data-outcome=rejected]")
    await rejected.wait_for()
    cells = await rejected.locator("tbody tr td").all_inner_texts()
    assert cells[:3] == ["2", "is_active", "perhaps"]


async def test_export_for_excel_downloads_with_bom_and_crlf(
    logged_in_page: Page, server: LiveServer, database_url: str, tmp_path: Path
):
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO users (username, email, full_name) VALUES"
            " ('ann', 'ann@example.com', 'two' || chr(10) || 'lines'),"
            " ('bob', 'bob@example.com', 'Bob')"
        )
    finally:
        await conn.close()
    page = logged_in_page
    await page.goto(server.url + "/users")
    async with page.expect_download() as info:
        await page.click("a[href*='excel=1']")
    saved = tmp_path / "excel.csv"
    await (await info.value).save_as(saved)
    data = saved.read_bytes()
    # a byte order mark so Excel reads UTF-8, CRLF between rows, LF kept inside a quoted cell
    assert data.startswith(b"\xef\xbb\xbfid,username,email,")
    assert data.count(b"\r\n") == 3 and b'"two\nlines"' in data
