"""CSV import under hostile or careless files: ids, end markers, line ends, values, limits."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from admin.app import create_app
from admin.csv_spool import EndMarkerGuard
from admin.settings import Settings
from tests.conftest import LoggedIn, log_in
from tests.csv_helpers import USERS_HEADER, table_rows, upload, user_lines


def _errors(response: httpx.Response) -> list[tuple[int | None, str | None, str | None]]:
    return [(e["line"], e["column"], e["value"]) for e in response.json()["errors"]]


# ---- item 7: a line holding only \. must never end the file early


def _end_marker_files() -> Iterator[tuple[str, bytes, int]]:
    """(name, file, physical line of the lone \\. record)."""
    head = b"username,email\n"
    one, two = b"bd1,bd1@example.com", b"bd2,bd2@example.com"
    yield "middle", head + one + b"\n\\.\n" + two + b"\n", 3
    yield "first data line", head + b"\\.\n" + one + b"\n", 2
    yield "last line", head + one + b"\n\\.\n", 3
    yield "last line without newline", head + one + b"\n\\.", 3
    yield "crlf", b"username,email\r\n" + one + b"\r\n\\.\r\n" + two + b"\r\n", 3
    yield "cr only", b"username,email\r" + one + b"\r\\.\r" + two + b"\r", 3
    yield (
        "after a multi-line field",
        (b"username,email,full_name\n" + one + b',"a\nb"\n\\.\n' + two + b",x\n"),
        4,
    )


@pytest.mark.parametrize(("content", "line"), [(c, n) for _, c, n in _end_marker_files()],
                         ids=[name for name, _, _ in _end_marker_files()])  # fmt: skip
async def test_a_lone_end_marker_line_is_a_row_not_the_end_of_the_file(
    admin_client: LoggedIn, conn: asyncpg.Connection, content: bytes, line: int
):
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["line"] == line
    assert "fewer fields" in error["message"]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_quoted_end_marker_and_one_inside_a_quoted_field_are_kept_as_data(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = (
        "username,email,full_name\n"
        'bd1,bd1@example.com,"\\."\n'
        'bd2,bd2@example.com,"first\n\\.\nlast"\n'
        "bd3,bd3@example.com,\\.\n"
        'bd4,bd4@example.com,"x\r\n\\.\r\n"\n'
    )
    response = await upload(admin_client, "users", content)
    assert response.status_code == 200, response.text
    names = {r["username"]: r["full_name"] for r in await table_rows(conn, "users")}
    assert names == {
        "bd1": "\\.",
        "bd2": "first\n\\.\nlast",
        "bd3": "\\.",
        "bd4": "x\r\n\\.\r\n",
    }


def _reference_rewrite(data: bytes) -> bytes:
    """Byte by byte: quote every \\. that fills a record started outside quotes."""
    out = bytearray()
    in_quotes = False
    index = 0
    while index < len(data):
        at_start = index == 0 or data[index - 1] in b"\r\n"
        after = data[index + 2 : index + 3]
        if (
            not in_quotes
            and at_start
            and data[index : index + 2] == b"\\."
            and after
            in (
                b"",
                b"\r",
                b"\n",
            )
        ):
            out += b'"\\."'
            index += 2
            continue
        if data[index] == 0x22:
            in_quotes = not in_quotes
        out.append(data[index])
        index += 1
    return bytes(out)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from([b"\\.", b"\\", b".", b'"', b"\n", b"\r", b"\r\n", b"a", b",", b"\\.\n"]),
        max_size=40,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_end_marker_guard_is_the_same_whatever_the_chunk_boundaries(
    parts: list[bytes], cuts: list[int]
):
    data = b"".join(parts)
    guard = EndMarkerGuard()
    output = bytearray()
    previous = 0
    for cut in sorted({min(c, len(data)) for c in cuts}):
        output += guard.feed(data[previous:cut])
        previous = cut
    output += guard.feed(data[previous:])
    output += guard.finish()
    assert bytes(output) == _reference_rewrite(data)


# ---- item 4: CR-only line ends


async def test_cr_only_file_larger_than_the_header_limit_imports(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = (USERS_HEADER + "".join(user_lines(2000))).replace("\n", "\r")
    assert len(content) > 64 * 1024
    response = await upload(admin_client, "users", content)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2000
    assert await conn.fetchval("SELECT count(*) FROM users") == 2000


async def test_cr_only_file_reports_physical_lines(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = (
        'username,email,full_name\r"ann",ann@example.com,"two\rlines"\rbob,bob@x.org,B\r'
        "bad user,c@x.org,C\r"
    )
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422
    assert _errors(response) == [(5, "username", "bad user")]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


# ---- item 7 (errors): bounded answers


async def test_ten_thousand_unknown_columns_give_a_capped_answer(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    header = "username,email," + ",".join(f"c{i}" for i in range(10_000))
    response = await upload(admin_client, "users", header + "\nann,a@x.org\n")
    assert response.status_code == 422
    body = response.json()
    assert len(body["errors"]) == 50
    assert body["more_errors"] is True
    assert len(response.content) < 20_000
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_many_bad_rows_give_fifty_problems_and_a_more_flag(admin_client: LoggedIn):
    content = USERS_HEADER + "".join(f"u{i:04d},u{i}@x.org,U,maybe\n" for i in range(500))
    response = await upload(admin_client, "users", content)
    body = response.json()
    assert len(body["errors"]) == 50 and body["more_errors"] is True
    html = await upload(admin_client, "users", content, json=False)
    assert "and there are more" in html.text


async def test_a_huge_bad_value_is_shown_cut_short(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    huge = "x" * (5 * 1024 * 1024)
    content = f"username,email,full_name\nann,ann@example.com,{huge}\nbob,bob@x.org,{huge}\n"
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["line"], e["column"]) for e in errors] == [(2, "full_name"), (3, "full_name")]
    assert all(e["value"] == "x" * 200 + "…" for e in errors)
    assert len(response.content) < 5_000
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


# ---- header limits


async def test_a_ten_megabyte_header_line_is_refused(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = b"username,email," + b"a" * (10 * 1024 * 1024) + b"\nann,a@x.org,x\n"
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert "header row is longer than 65536 bytes" in error["message"]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_a_header_arriving_a_byte_at_a_time_is_read(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = ("\ufeff" + USERS_HEADER + "".join(user_lines(3))).encode()

    async def bytewise() -> Iterator[bytes]:  # type: ignore[misc]
        for index in range(len(content)):
            yield content[index : index + 1]

    response = await admin_client.http.post(
        "/users/import",
        content=bytewise(),
        headers={
            "Content-Type": "text/csv",
            "Accept": "application/json",
            "X-CSRF-Token": admin_client.csrf,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 3


# ---- item 6 (timeout): the database part is bounded by IMPORT_TIMEOUT_S too


async def test_an_import_past_its_time_limit_is_cancelled_and_writes_nothing(
    settings: Settings, pool: asyncpg.Pool, conn: asyncpg.Connection, database_url: str
):
    quick = dataclasses.replace(settings, import_timeout_s=2.0)
    app = create_app(quick, pool=pool)
    from tests.conftest import create_staff

    await create_staff(conn, "boss", "admin")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    token = await log_in(http, "boss")
    blocker = await asyncpg.connect(database_url)
    try:
        locked = blocker.transaction()
        await locked.start()
        await blocker.execute("LOCK TABLE users IN SHARE MODE")  # the INSERT has to wait
        async with asyncio.timeout(60):  # without a limit, the import would wait forever
            response = await http.post(
                "/users/import",
                content=(USERS_HEADER + "".join(user_lines(3))).encode(),
                headers={"Content-Type": "text/csv", "X-CSRF-Token": token},
            )
        await locked.rollback()
    finally:
        await blocker.close()
    assert response.status_code == 408, response.text
    assert "did not finish within 2 s" in response.text
    assert await conn.fetchval("SELECT count(*) FROM users") == 0
    entry = await conn.fetchval(
        "SELECT after FROM audit_log WHERE action = 'csv_import' ORDER BY id DESC LIMIT 1"
    )
    entry = json.loads(entry) if isinstance(entry, str) else entry
    assert entry["outcome"] == "refused"
    again = await http.post(
        "/users/import",
        content=(USERS_HEADER + "".join(user_lines(3))).encode(),
        headers={"Content-Type": "text/csv", "X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert again.status_code == 200, again.text
    await http.aclose()
