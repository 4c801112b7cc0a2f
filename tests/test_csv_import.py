"""CSV import through the real HTTP stack: parsing, validation, all-or-nothing, audit."""

from __future__ import annotations

import hashlib

import asyncpg

from tests.conftest import LoggedIn
from tests.csv_helpers import USERS_HEADER, table_rows, upload, user_lines


async def test_imports_quotes_newlines_commas_crlf_bom_and_unicode(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = (
        "\ufeffemail,username,full_name\r\n"
        'ann@example.com,ann,"Ann ""The Boss"" O\'Neil"\r\n'
        'bob@example.com,bob,"Bob\r\nSecond line, with comma"\r\n'
        "zoe@example.com,zoe,Zoë Ψ 東京\r\n"
    )
    response = await upload(admin_client, "users", content)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 3
    rows = {r["username"]: r for r in await table_rows(conn, "users")}
    assert rows["ann"]["full_name"] == 'Ann "The Boss" O\'Neil'
    assert rows["bob"]["full_name"] == "Bob\r\nSecond line, with comma"
    assert rows["zoe"]["full_name"] == "Zoë Ψ 東京"
    assert rows["zoe"]["is_active"] is True


async def test_insert_counts_rows_and_writes_one_audit_entry(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = USERS_HEADER + "".join(user_lines(5))
    response = await upload(admin_client, "users", content, filename="five.csv")
    assert response.status_code == 200
    assert response.json()["rows"] == 5
    assert await conn.fetchval("SELECT count(*) FROM users") == 5
    entry = await conn.fetchrow("SELECT * FROM audit_log WHERE action = 'csv_import'")
    assert entry["resource"] == "users"
    assert entry["after"]["file"] == "five.csv"
    assert entry["after"]["size"] == len(content.encode())
    assert entry["after"]["sha256"] == hashlib.sha256(content.encode()).hexdigest()
    assert entry["after"]["mode"] == "insert"
    assert entry["after"]["outcome"] == "imported"
    assert entry["after"]["rows"] == 5


async def test_html_result_fragment_for_htmx_and_page_for_plain_post(admin_client: LoggedIn):
    content = USERS_HEADER + "".join(user_lines(2))
    response = await admin_client.http.post(
        "/users/import",
        data={"csrf_token": admin_client.csrf, "mode": "insert"},
        files={"file": ("a.csv", content.encode(), "text/csv")},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert 'data-outcome="imported"' in response.text
    assert "<html" not in response.text
    page = await upload(admin_client, "users", "username,email\nbad user,x\n", json=False)
    assert page.status_code == 422
    assert "<html" in page.text and 'data-outcome="rejected"' in page.text
    assert "bad user" in page.text


async def test_header_only_file_imports_nothing_and_succeeds(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    response = await upload(admin_client, "users", USERS_HEADER)
    assert response.status_code == 200
    assert response.json()["rows"] == 0
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_empty_file_is_rejected(admin_client: LoggedIn, conn: asyncpg.Connection):
    for content in (b"", b"\xef\xbb\xbf", b"\n", b"\r\n \n\t\n"):
        response = await upload(admin_client, "users", content)
        assert response.status_code == 422
        assert response.json()["errors"][0]["message"] == (
            "the file is empty: the first line must name the columns"
        )
    # blank lines above the header are not an empty file
    response = await upload(admin_client, "users", b"\n\r\n" + USERS_HEADER.encode())
    assert response.status_code == 422
    assert response.json()["errors"][0]["message"] == (
        "line 1 is blank: the first line must name the columns "
        "(delete the blank lines above the header)"
    )
    outcomes = await conn.fetch(
        "SELECT after->>'outcome' AS o FROM audit_log WHERE action = 'csv_import'"
    )
    assert [r["o"] for r in outcomes] == ["rejected"] * 5


async def test_unknown_and_missing_columns_are_named(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    response = await upload(admin_client, "users", "username,mail,nickname\nann,a@b.c,x\n")
    assert response.status_code == 422
    messages = " | ".join(e["message"] for e in response.json()["errors"])
    assert "unknown column 'mail'" in messages
    assert "unknown column 'nickname'" in messages
    assert "missing required column 'email'" in messages
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_bad_cells_are_all_reported_with_physical_line_column_and_value(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = (
        "username,email,full_name,is_active,created_at\n"  # line 1
        'ann,ann@example.com,"Ann\nwith\nthree lines",true,2024-01-02\n'  # lines 2-4
        "bob,bob@example.com,Bob,maybe,2024-01-02\n"  # line 5
        'cy,cy@example.com,"C\r\nY",yes,2024-13-45\n'  # lines 6-7 (bad username, date)
        "dee,dee@example.com,Dee,false,\n"  # line 8: fine
        ",nobody@example.com,,true,\n"  # line 9: username required
    )
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422, response.text
    errors = [(e["line"], e["column"], e["value"]) for e in response.json()["errors"]]
    assert (5, "is_active", "maybe") in errors
    assert (6, "username", "cy") in errors
    assert (6, "created_at", "2024-13-45") in errors
    assert (9, "username", None) in errors or (9, "username", "") in errors
    assert len(errors) == 4
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_more_than_twenty_errors_are_reported_at_once(admin_client: LoggedIn):
    content = USERS_HEADER + "".join(
        f"user{i:03d},user{i}@example.com,U,notabool\n" for i in range(30)
    )
    response = await upload(admin_client, "users", content)
    errors = response.json()["errors"]
    assert len(errors) == 30
    assert [e["line"] for e in errors] == list(range(2, 32))


async def test_wrong_field_count_names_the_line(admin_client: LoggedIn, conn: asyncpg.Connection):
    content = USERS_HEADER + 'ann,a@example.com,"A\nB",true\nbob,b@example.com,B,true,extra\n'
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["line"] == 4
    assert "more fields" in error["message"]
    short = await upload(admin_client, "users", USERS_HEADER + "ann,a@example.com\n")
    (error,) = short.json()["errors"]
    assert error["line"] == 2 and "fewer fields" in error["message"]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_invalid_utf8_names_the_line(admin_client: LoggedIn, conn: asyncpg.Connection):
    # a UTF-8 file (Zoë) with two bytes UTF-8 cannot hold: not taken for a code page
    content = (
        USERS_HEADER + "ann,a@example.com,Zoë,true\n"
    ).encode() + b"bob,b@x.org,B\xff\xfe,t\n"
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["line"] == 3
    assert "UTF-8" in error["message"]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_duplicates_within_the_file_are_reported(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = USERS_HEADER + (
        "ann,ann@example.com,A,true\n"
        "bob,ANN@example.com,B,true\n"  # same email, other case
        "ann,other@example.com,A2,true\n"
    )
    for mode in ("insert", "upsert"):
        response = await upload(admin_client, "users", content, mode=mode)
        assert response.status_code == 422
        errors = {(e["line"], e["column"]): e["message"] for e in response.json()["errors"]}
        assert "first on line 2" in errors[(3, "email")]
        assert "first on line 2" in errors[(4, "username")]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_insert_mode_rejects_rows_already_in_the_table(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    await upload(admin_client, "users", USERS_HEADER + "ann,ann@example.com,Ann,true\n")
    before = await table_rows(conn, "users")
    content = USERS_HEADER + "new,new@example.com,N,true\nann,ann2@example.com,A,true\n"
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["line"], error["column"], error["value"]) == (3, "username", "ann")
    assert await table_rows(conn, "users") == before


async def test_upsert_updates_changed_rows_only(admin_client: LoggedIn, conn: asyncpg.Connection):
    await upload(admin_client, "users", USERS_HEADER + "".join(user_lines(3)))
    content = USERS_HEADER + (
        "user0000000,user0@example.com,User 0,true\n"  # unchanged
        "user0000001,user1@example.com,Renamed,false\n"  # changed
        "fresh,fresh@example.com,Fresh,true\n"  # new
    )
    response = await upload(admin_client, "users", content, mode="upsert")
    body = response.json()
    assert (body["inserted"], body["updated"], body["unchanged"]) == (1, 1, 1)
    rows = {r["username"]: r for r in await table_rows(conn, "users")}
    assert rows["user0000000"]["version"] == 1
    assert rows["user0000001"]["version"] == 2
    assert rows["user0000001"]["full_name"] == "Renamed"
    assert rows["user0000001"]["is_active"] is False
    assert rows["user0000002"]["version"] == 1


async def test_upsert_keeps_columns_missing_from_the_file(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    await upload(admin_client, "users", USERS_HEADER + "ann,ann@example.com,Ann Full,false\n")
    response = await upload(
        admin_client, "users", "username,email\nann,new@example.com\n", mode="upsert"
    )
    assert response.json()["updated"] == 1
    row = await conn.fetchrow("SELECT * FROM users WHERE username = 'ann'")
    assert (row["email"], row["full_name"], row["is_active"]) == (
        "new@example.com",
        "Ann Full",
        False,
    )


async def test_upsert_rejects_an_email_of_another_user(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    await upload(admin_client, "users", USERS_HEADER + "".join(user_lines(2)))
    before = await table_rows(conn, "users")
    content = "username,email\nuser0000000,user1@example.com\n"
    response = await upload(admin_client, "users", content, mode="upsert")
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["line"], error["column"]) == (2, "email")
    assert await table_rows(conn, "users") == before


async def test_explicit_ids_are_kept_and_the_sequence_moves_past_them(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = "id,username,email\n500,ann,ann@example.com\n,bob,bob@example.com\n"
    response = await upload(admin_client, "users", content)
    assert response.status_code == 200, response.text
    ids = {r["username"]: r["id"] for r in await conn.fetch("SELECT id, username FROM users")}
    assert ids["ann"] == 500
    new_id = await conn.fetchval(
        "INSERT INTO users (username, email) VALUES ('cyd', 'cyd@example.com') RETURNING id"
    )
    assert new_id > 500


async def test_mode_must_be_insert_or_upsert(admin_client: LoggedIn):
    response = await upload(admin_client, "users", USERS_HEADER, mode="merge")
    assert response.status_code == 400


async def test_unterminated_quote_is_reported(admin_client: LoggedIn, conn: asyncpg.Connection):
    content = USERS_HEADER + 'ann,ann@example.com,"Ann,true\nbob,bob@example.com,Bob,true\n'
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["line"] == 2  # where the quote opened; the file ends inside it on line 3
    assert "never closed" in error["message"] and "line 3" in error["message"]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_orders_import_page_documents_the_columns(admin_client: LoggedIn):
    page = await admin_client.get("/orders/import")
    assert page.status_code == 200
    for column in ("user_id", "status", "total", "created_at"):
        assert f"<code>{column}</code>" in page.text
