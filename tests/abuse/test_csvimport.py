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
from admin.csvio.problems import MAX_ERRORS
from admin.csvio.spool import EndMarkerGuard
from admin.csvio.tables import MAX_IMPORTED_ID
from admin.settings import Settings
from tests.conftest import LoggedIn, log_in
from tests.csv_helpers import USERS_HEADER, table_rows, upload, user_lines

BIGINT_MAX = 2**63 - 1


async def _customer(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO users (username, email) VALUES ('buyer', 'buyer@example.com') RETURNING id"
        )
    )


def _errors(response: httpx.Response) -> list[tuple[int | None, str | None, str | None]]:
    return [(e["line"], e["column"], e["value"]) for e in response.json()["errors"]]


# ---- item 3: ids that would exhaust the identity sequence


@pytest.mark.parametrize("bad_id", [str(BIGINT_MAX), str(MAX_IMPORTED_ID + 1), "0", "-1"])
async def test_ids_outside_the_safe_range_are_refused(
    admin_client: LoggedIn, conn: asyncpg.Connection, bad_id: str
):
    customer = await _customer(conn)
    before = await conn.fetchval("SELECT last_value FROM users_id_seq")
    users = await upload(
        admin_client, "users", f"id,username,email\n5,ann,ann@example.com\n{bad_id},bob,b@x.org\n"
    )
    assert users.status_code == 422, users.text
    assert (3, "id", bad_id) in _errors(users)
    assert "from 1 to 9,007,199,254,740,991" in users.text
    orders = await upload(admin_client, "orders", f"id,user_id,total\n{bad_id},{customer},1\n")
    assert orders.status_code == 422
    assert _errors(orders) == [(2, "id", bad_id)]
    assert await conn.fetchval("SELECT count(*) FROM users") == 1
    assert await conn.fetchval("SELECT count(*) FROM orders") == 0
    assert await conn.fetchval("SELECT last_value FROM users_id_seq") == before


async def test_ids_beyond_bigint_are_refused_as_not_whole_numbers(admin_client: LoggedIn):
    response = await upload(admin_client, "users", "id,username,email\n1e30,ann,a@x.org\n")
    assert response.status_code == 422
    assert _errors(response) == [(2, "id", "1e30")]


@pytest.mark.parametrize("mode", ["insert", "upsert"])
async def test_shop_and_panel_inserts_still_work_after_an_import_of_the_largest_id(
    admin_client: LoggedIn, conn: asyncpg.Connection, mode: str
):
    customer = await _customer(conn)
    users = await upload(
        admin_client,
        "users",
        f"id,username,email\n{MAX_IMPORTED_ID},ann,ann@example.com\n",
        mode=mode,
    )
    assert users.status_code == 200, users.text
    orders = await upload(
        admin_client, "orders", f"id,user_id,total\n{MAX_IMPORTED_ID},{customer},1.00\n", mode=mode
    )
    assert orders.status_code == 200, orders.text
    # the shop's own inserts, without ids
    shop_user = await conn.fetchval(
        "INSERT INTO users (username, email) VALUES ('shop', 'shop@example.com') RETURNING id"
    )
    assert shop_user == MAX_IMPORTED_ID + 1
    shop_order = await conn.fetchval(
        "INSERT INTO orders (user_id, total) VALUES ($1, 2) RETURNING id", customer
    )
    assert shop_order == MAX_IMPORTED_ID + 1
    # the panel's create
    created = await admin_client.post("/users", {"username": "panel", "email": "p@example.com"})
    assert created.status_code == 303, created.text
    assert await conn.fetchval("SELECT id FROM users WHERE username = 'panel'") == shop_user + 1


async def test_the_sequence_never_moves_back_or_past_the_largest_id(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    await upload(admin_client, "users", "id,username,email\n1000,ann,ann@example.com\n")
    assert await conn.fetchval("SELECT last_value FROM users_id_seq") == 1000
    response = await upload(admin_client, "users", "id,username,email\n10,bob,bob@example.com\n")
    assert response.status_code == 200
    assert await conn.fetchval("SELECT last_value FROM users_id_seq") == 1000
    new_id = await conn.fetchval(
        "INSERT INTO users (username, email) VALUES ('cyd', 'cyd@example.com') RETURNING id"
    )
    assert new_id == 1001


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


# ---- items 5 and 6: values that would change, are ambiguous, or that the forms refuse


async def test_amounts_with_too_many_decimals_are_refused_unless_rounding_is_chosen(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    customer = await _customer(conn)
    content = f"user_id,total\n{customer},12.345\n{customer},12.340\n"
    refused = await upload(admin_client, "orders", content)
    assert refused.status_code == 422
    assert _errors(refused) == [(2, "total", "12.345")]
    (error,) = refused.json()["errors"]
    assert "round_decimals=1" in error["message"]
    assert "round_decimals=1" in refused.json()["options"]
    page = await upload(admin_client, "orders", content, json=False)
    assert "round_decimals=1" in page.text
    assert await conn.fetchval("SELECT count(*) FROM orders") == 0
    rounded = await admin_client.http.post(
        "/orders/import?round_decimals=1",
        data={"csrf_token": admin_client.csrf, "mode": "insert"},
        files={"file": ("o.csv", content.encode(), "text/csv")},
        headers={"Accept": "application/json"},
    )
    assert rounded.status_code == 200, rounded.text
    totals = [str(r["total"]) for r in await table_rows(conn, "orders")]
    assert totals == ["12.35", "12.34"]


async def _upload_with(client: LoggedIn, table: str, content: str, **fields: str) -> httpx.Response:
    return await client.http.post(
        f"/{table}/import",
        data={"csrf_token": client.csrf, "mode": "insert", **fields},
        files={"file": ("data.csv", content.encode(), "text/csv")},
        headers={"Accept": "application/json"},
    )


async def test_day_month_dates_are_refused_unless_an_order_is_chosen(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = (
        "username,email,created_at\n"
        "ann,ann@example.com,01/02/2024\n"
        "bob,bob@example.com,2024-03-04 05:06:07+00\n"
        "cyd,cy@example.com,05.06.2024 10:00\n"
    )
    refused = await upload(admin_client, "users", content)
    assert refused.status_code == 422
    assert _errors(refused) == [
        (2, "created_at", "01/02/2024"),
        (4, "created_at", "05.06.2024 10:00"),
    ]
    assert "date_order=dmy" in refused.json()["errors"][0]["message"]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0
    for order, expected in (("dmy", (2, 1)), ("mdy", (1, 2))):
        await conn.execute("DELETE FROM users")
        response = await _upload_with(admin_client, "users", content, date_order=order)
        assert response.status_code == 200, response.text
        row = await conn.fetchrow(
            "SELECT extract(month FROM created_at AT TIME ZONE 'UTC')::int AS m,"
            " extract(day FROM created_at AT TIME ZONE 'UTC')::int AS d"
            " FROM users WHERE username = 'ann'"
        )
        assert (row["m"], row["d"]) == expected
        iso = await conn.fetchval("SELECT created_at FROM users WHERE username = 'bob'")
        assert (iso.year, iso.month, iso.day) == (2024, 3, 4)
    bad = await _upload_with(admin_client, "users", content, date_order="ymd")
    assert bad.status_code == 400


async def test_import_form_offers_the_value_options(admin_client: LoggedIn):
    page = await admin_client.get("/orders/import")
    assert 'name="round_decimals"' in page.text
    assert 'name="date_order"' in page.text
    assert 'value="dmy"' in page.text and 'value="mdy"' in page.text


@pytest.mark.parametrize(
    ("column", "value"),
    [("total", "NaN"), ("total", "nan"), ("total", "Infinity"), ("total", "-Infinity"),
     ("total", "-1"), ("total", "10000000000"), ("id", "-1"), ("id", "0"),
     ("created_at", "20000-01-01"), ("created_at", "0044-03-15 BC"),
     ("created_at", "infinity"), ("created_at", "-infinity"), ("created_at", "1899-12-31"),
     ("created_at", "2201-01-01")],
)  # fmt: skip
async def test_order_values_the_panel_refuses_are_refused_on_import(
    admin_client: LoggedIn, conn: asyncpg.Connection, column: str, value: str
):
    customer = await _customer(conn)
    good = {"id": "", "user_id": str(customer), "total": "1.00", "created_at": ""}
    good[column] = value
    content = "id,user_id,total,created_at\n" + ",".join(good.values()) + "\n"
    for mode in ("insert", "upsert"):
        if mode == "upsert" and column != "id":
            content = content.replace("\n,", "\n77,", 1)
        response = await upload(admin_client, "orders", content, mode=mode)
        assert response.status_code == 422, response.text
        assert (2, column, value) in _errors(response)
    assert await conn.fetchval("SELECT count(*) FROM orders") == 0


@pytest.mark.parametrize(
    ("column", "value"),
    [("email", "ann@localhost"), ("email", "a nn@example.com"), ("email", "ann@@example.com"),
     ("id", "-5"), ("created_at", "infinity"), ("created_at", "12000-01-01")],
)  # fmt: skip
async def test_user_values_the_panel_refuses_are_refused_on_import(
    admin_client: LoggedIn, conn: asyncpg.Connection, column: str, value: str
):
    good = {"id": "", "username": "ann", "email": "ann@example.com", "created_at": ""}
    good[column] = value
    content = "id,username,email,created_at\n" + ",".join(good.values()) + "\n"
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422, response.text
    assert _errors(response) == [(2, column, value)]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_the_years_1900_to_2200_are_accepted(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = (
        "username,email,created_at\n"
        "ann,ann@example.com,1900-01-01 00:00:00+00\n"
        "bob,bob@example.com,2200-12-31 23:59:59+00\n"
    )
    response = await upload(admin_client, "users", content)
    assert response.status_code == 200, response.text
    years = sorted(r["created_at"].year for r in await table_rows(conn, "users"))
    assert years == [1900, 2200]


# ---- item 7 (errors): bounded answers


async def test_ten_thousand_unknown_columns_give_a_capped_answer(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    header = "username,email," + ",".join(f"c{i}" for i in range(10_000))
    response = await upload(admin_client, "users", header + "\nann,a@x.org\n")
    assert response.status_code == 422
    body = response.json()
    assert len(body["errors"]) == MAX_ERRORS
    assert body["more_errors"] is True and body["error_count"] > 10_000
    assert len(response.content) < 200_000
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_many_bad_rows_give_the_first_thousand_problems_and_the_count(
    admin_client: LoggedIn,
):
    content = USERS_HEADER + "".join(f"u{i:04d},u{i}@x.org,U,maybe\n" for i in range(1500))
    response = await upload(admin_client, "users", content)
    body = response.json()
    assert len(body["errors"]) == MAX_ERRORS and body["more_errors"] is True
    assert body["error_count"] == 1500
    assert body["summary"] == "Nothing imported: 1,500 problems."
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
