"""A file that is not CSV text (a workbook, an archive, an image, UTF-16 or binary bytes) is
refused at its first bytes with what it is and what to upload instead, by the import (raw
body and browser form alike) and by the preview; nothing is written."""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import zipfile
from collections.abc import AsyncIterator

import asyncpg
import pytest

from admin.csvio import file_kinds
from tests.conftest import LoggedIn
from tests.csv_helpers import USERS_HEADER, post_raw, upload, user_lines

CSV = USERS_HEADER + "".join(user_lines(3))
TAB_SEPARATED = CSV.replace(",", "\t")


def _xlsx() -> bytes:
    """A ZIP archive laid out like a workbook, a line break in its first kilobytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types>\n</Types>\n")
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet>\n" * 100)
    return out.getvalue()


FILES = {
    "xlsx": (_xlsx(), "a ZIP archive (an .xlsx or .ods workbook is one)"),
    "xls": (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40 + b"\n" + b"\x01" * 500,
        "an Excel 97-2003 workbook (.xls)",
    ),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "a PDF document"),
    "gzip": (gzip.compress(CSV.encode()), "gzip-compressed"),
    "bzip2": (bz2.compress(CSV.encode()), "bzip2-compressed"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64, "a PNG image"),
    "utf-16le": (
        codecs.BOM_UTF16_LE + TAB_SEPARATED.encode("utf-16-le"),
        "UTF-16 text (as Excel's “Unicode Text” saves)",
    ),
    "utf-16be": (codecs.BOM_UTF16_BE + CSV.encode("utf-16-be"), "UTF-16 text"),
    "utf-16 without a mark": (CSV.encode("utf-16-le"), "UTF-16 text"),
    "utf-32": (codecs.BOM_UTF32_LE + CSV.encode("utf-32-le"), "UTF-32 text"),
    "xml spreadsheet": (
        b'<?xml version="1.0"?>\n<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">\n',
        "an XML document (Excel's “XML Spreadsheet” is one)",
    ),
    "web page": (b"<!DOCTYPE HTML>\n<html><body>users</body></html>\n", "a web page (HTML)"),
    "binary": (
        bytes(range(256)) * 4,
        "not text (its first line holds the control byte 0x00 at byte 1)",
    ),
}


async def _users(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM users"))


@pytest.mark.parametrize("kind", list(FILES))
async def test_a_file_that_is_not_csv_text_is_refused_with_what_it_is(
    kind: str, admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    content, what = FILES[kind]
    before = await _users(conn)
    raw = await post_raw(admin_client, "/users/import?mode=insert", content)
    assert raw.status_code == 422, raw.text
    body = raw.json()
    assert body["summary"] == "Nothing imported: 1 problem."
    [problem] = body["errors"]
    assert problem["message"].startswith(f"the file is {what}, not CSV text: ")
    assert "save the sheet as “CSV UTF-8”" in problem["message"] or kind in (
        "pdf",
        "gzip",
        "bzip2",
        "png",
        "web page",
        "binary",
    )

    form = await upload(admin_client, "users", content, filename="export.csv", json=False)
    assert form.status_code == 422
    assert "Nothing imported: 1 problem." in form.text
    assert f"the file is {what}, not CSV text" in form.text.replace("&#39;", "'")
    assert await _users(conn) == before


async def test_the_preview_says_what_the_file_is_and_offers_no_mapping(
    admin_client: LoggedIn,
) -> None:
    response = await admin_client.http.post(
        "/users/import/preview",
        content=_xlsx()[: 200 * 1024],
        headers={"Content-Type": "text/csv", "X-CSRF-Token": admin_client.csrf},
    )
    assert response.status_code == 200, response.text
    assert "the file is a ZIP archive" in response.text and "data-refused" in response.text
    assert "data-map" not in response.text and "data-rows" not in response.text


async def test_a_csv_file_is_still_read_whatever_it_starts_with(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    # a header that starts like the signatures of a ZIP archive, a GIF image, bzip2
    header = "PK,username,email,GIF8,BZh\n"
    content = header + "".join(f"{i},u{i:07d},u{i}@example.com,,\n" for i in range(3))
    response = await post_raw(admin_client, "/users/import?mode=insert&ignore_unknown=1", content)
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == 3


def test_a_header_with_a_stray_nul_is_named_by_its_byte() -> None:
    assert file_kinds.header_refusal(b"username,email\r\n") is None
    assert file_kinds.header_refusal(b"name\tE-mail\n") is None
    refused = file_kinds.header_refusal(b"username,em\x00ail,full_name\n")
    assert refused is not None and "0x00 at byte 12" in refused
    for start in (b"PK,username", b"GIF8,username", b"BZh,username", b"<htm,name"):
        assert file_kinds.refusal(start) is None, start


async def test_a_short_first_line_sent_a_byte_at_a_time_is_named_too(
    admin_client: LoggedIn,
) -> None:
    content = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"

    async def bytewise() -> AsyncIterator[bytes]:
        for index in range(len(content)):
            yield content[index : index + 1]

    response = await post_raw(admin_client, "/users/import?mode=insert", bytewise())
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["message"].startswith("the file is a PDF document")
