"""Every problem of a file in one answer, structural and value problems together, the
downloadable error file, and the files spreadsheets write (encodings, delimiters, decimal
commas)."""

from __future__ import annotations

import csv
import io
import uuid

import asyncpg
import httpx

from tests.conftest import LoggedIn
from tests.csv_helpers import USERS_HEADER, upload


def progress_token() -> str:
    # progress files live in the machine's temp directory under (staff id, token), and every
    # test database's first admin has id 1: a fixed token is shared with any other test run
    # on the machine, whose import may finish or cancel "this" one
    return uuid.uuid4().hex


async def test_structural_and_value_problems_come_together_and_nothing_is_written(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    content = (
        USERS_HEADER.encode()  # line 1
        + b"ann,ann@example.com,Zo\xc3\xab,true\n"  # 2: fine (UTF-8)
        + b"bob,bob@example.com,Bob\n"  # 3: too few fields
        + b"cy,cy@example.com,Cy,maybe\n"  # 4: bad boolean, username too short
        + b"dee,dee@example.com,D\x00ee,true\n"  # 5: NUL
        + b"eve,eve@example.com,Eve,true,extra\n"  # 6: too many fields
        + b'fay,fay@example.com,"F\nay",nope\n'  # 7-8: bad boolean
        + b"gus,gus@example.com,G\xffus,true\n"  # 9: invalid UTF-8
        + b"ann,ann2@example.com,Ann again,true\n"  # 10: username twice in the file
    )
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422, response.text
    body = response.json()
    found = [(e["line"], e["column"]) for e in body["errors"]]
    assert found == [
        (3, None), (4, "is_active"), (4, "username"), (5, None), (6, None), (7, "is_active"),
        (9, None), (10, "username"),
    ]  # fmt: skip
    assert body["summary"] == "Nothing imported: 8 problems."
    messages = {e["line"]: e["message"] for e in body["errors"]}
    assert "fewer fields" in messages[3] and "more fields" in messages[6]
    assert "NUL" in messages[5] and "not valid UTF-8" in messages[9]
    assert "first on line 2" in next(e for e in body["errors"] if e["line"] == 10)["message"]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0

    # every problem, with its row as sent, in a file to fix and send again
    errors = await admin_client.get(body["error_file"])
    assert errors.status_code == 200
    assert errors.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(errors.content.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["username", "email", "full_name", "is_active", "import line",
                       "import problem"]  # fmt: skip
    assert [r[4] for r in rows[1:]] == ["3", "4", "5", "6", "7", "9", "10"]
    assert rows[2][:4] == ["cy", "cy@example.com", "Cy", "maybe"]
    assert "is_active" in rows[2][5] and "username" in rows[2][5]
    assert rows[5][2] == "F\nay"
    # fixed in place, the same file imports (the added columns are ignored)
    fixed = [rows[0]] + [
        [f"user{i}", f"user{i}@example.com", "Fixed", "true", r[4], r[5]]
        for i, r in enumerate(rows[1:])
    ]
    out = io.StringIO()
    csv.writer(out).writerows(fixed)
    again = await upload(admin_client, "users", out.getvalue())
    assert again.status_code == 200, again.text
    assert again.json()["inserted"] == 7


async def test_the_error_file_is_only_for_the_one_who_sent_the_file(
    admin_client: LoggedIn,
    app,
    conn: asyncpg.Connection,  # type: ignore[no-untyped-def]
) -> None:
    from tests.conftest import _logged_in

    response = await upload(admin_client, "users", USERS_HEADER + "x,y\n")
    url = response.json()["error_file"]
    other = await _logged_in(app, conn, "other-admin", "admin")
    try:
        assert (await other.get(url)).status_code == 404
        assert (await admin_client.get(url + "x")).status_code == 404
    finally:
        await other.http.aclose()


async def test_windows_1252_and_semicolons_with_decimal_commas_are_detected(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    ann = await conn.fetchval(
        "INSERT INTO users (username, email) VALUES ('ann', 'a@x.org') RETURNING id"
    )
    content = f"user_id;total;status\r\n{ann};12,50;paid\r\n{ann};3;pending\r\n".encode()
    response = await upload(admin_client, "orders", content)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["format"]["delimiter"] == "semicolon" and body["format"]["decimal_comma"]
    totals = [str(r["total"]) for r in await conn.fetch("SELECT total FROM orders ORDER BY id")]
    assert totals == ["12.50", "3.00"]

    names = "username;email;full_name\r\nzoe;z@x.org;Zoë Ñúñez \u2013 €\r\n".encode("cp1252")
    latin = await upload(admin_client, "users", names)
    assert latin.status_code == 200, latin.text
    assert latin.json()["format"]["encoding"] == "Windows-1252"
    assert latin.json()["format"]["encoding_detected"] is True
    name = await conn.fetchval("SELECT full_name FROM users WHERE username = 'zoe'")
    assert name == "Zoë Ñúñez \u2013 €"


async def test_a_raw_body_is_read_in_the_charset_its_content_type_names(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    async def send(content: bytes, content_type: str, query: str = "") -> httpx.Response:
        return await admin_client.http.post(
            f"/users/import{query}",
            content=content,
            headers={
                "Content-Type": content_type,
                "X-CSRF-Token": admin_client.csrf,
                "Accept": "application/json",
            },
        )

    # "Ã©" written by a Windows-1252 spreadsheet is also valid UTF-8 (for "é"): only the
    # charset tells them apart
    content = "username,email,full_name\nann,a@x.org,CafÃ©\n".encode("cp1252")
    named = await send(content, "text/csv; charset=Windows-1252")
    assert named.status_code == 200, named.text
    assert named.json()["format"]["encoding"] == "Windows-1252"
    assert named.json()["format"]["encoding_detected"] is False
    assert await conn.fetchval("SELECT full_name FROM users WHERE username = 'ann'") == "CafÃ©"
    # its aliases are understood, and the query's choice wins over it
    content = "username,email,full_name\nbob,b@x.org,Zoë\n".encode()
    chosen = await send(content, 'text/csv; charset="ISO-8859-1"', "?encoding=utf-8")
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["format"]["encoding"] == "UTF-8"
    assert await conn.fetchval("SELECT full_name FROM users WHERE username = 'bob'") == "Zoë"
    latin = await send(b"username,email\ncyd,c@x.org\n", "text/csv; charset=latin1")
    assert latin.json()["format"]["encoding"] == "Latin-1"
    # a charset the import cannot read is refused before anything is read or written
    refused = await send("username\ndee\n".encode("utf-16"), "text/csv; charset=UTF-16")
    assert refused.status_code == 400
    assert "charset 'UTF-16' is not one the import reads" in refused.text
    assert await conn.fetchval("SELECT count(*) FROM users WHERE username = 'dee'") == 0
    for odd in ("x" * 5000, "utf-8\x00"):  # named at length, or with a NUL: the same answer
        refused = await send(b"username\ndee\n", f"text/csv; charset={odd}")
        assert refused.status_code == 400
        assert "is not one the import reads" in refused.text and "x" * 41 not in refused.text


async def test_tabs_cr_line_ends_bom_and_a_chosen_encoding(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    tabbed = "\ufeffusername\temail\rann\tann@example.com\rbob\tbob@example.com\r"
    response = await upload(admin_client, "users", tabbed)
    assert response.status_code == 200, response.text
    assert response.json()["format"]["delimiter"] == "tab"
    # UTF-8 bytes read as Latin-1, because the sender said so
    chosen = await admin_client.http.post(
        "/users/import?encoding=latin-1",
        data={"csrf_token": admin_client.csrf},
        files={
            "file": ("a.csv", "username,full_name,email\ncyd,Zoë,c@x.org\n".encode(), "text/csv")
        },
        headers={"Accept": "application/json"},
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["format"]["encoding_detected"] is False
    assert await conn.fetchval("SELECT full_name FROM users WHERE username = 'cyd'") == "ZoÃ«"
    bad = await admin_client.http.post(
        "/users/import?delimiter=pipe",
        data={"csrf_token": admin_client.csrf},
        files={"file": ("a.csv", b"username\n", "text/csv")},
    )
    assert bad.status_code == 400


async def _preview(client: LoggedIn, table: str, sample: bytes, query: str = "") -> str:
    response = await client.http.post(
        f"/{table}/import/preview?{query}",
        content=sample,
        headers={"Content-Type": "text/csv", "X-CSRF-Token": client.csrf},
    )
    assert response.status_code == 200, response.text
    return response.text


async def test_preview_shows_format_mapping_rows_and_count(admin_client: LoggedIn) -> None:
    sample = "User Name;E-mail;Nickname\r\nann;ann@example.com;A\r\nbob;bob@example.com;B\r\n"
    page = await _preview(admin_client, "users", sample.encode())
    assert "2 rows." in page
    assert "semicolon (detected)" in page and "UTF-8 (detected)" in page
    assert '<option value="username" selected>' in page
    assert '<option value="email" selected>' in page
    assert '<option value="-" selected>' in page  # Nickname: left out
    assert "unknown column &#39;Nickname&#39;" in page
    assert '<td class="wrap">bob@example.com</td>' in page
    # the start of a bigger file: an estimate; a chosen delimiter wins
    big = await _preview(admin_client, "users", sample.encode(), f"size={len(sample) * 1000}")
    assert "About " in big
    chosen = await _preview(admin_client, "users", sample.encode(), "delimiter=,")
    assert "comma-separated" in chosen and "(detected)" not in chosen.split("comma")[1][:20]


async def test_preview_needs_the_import_permission_and_a_small_sample(
    admin_client: LoggedIn, staff_client: LoggedIn
) -> None:
    refused = await staff_client.http.post(
        "/users/import/preview",
        content=b"username\nann\n",
        headers={"Content-Type": "text/csv", "X-CSRF-Token": staff_client.csrf},
    )
    assert refused.status_code == 403
    large = await admin_client.http.post(
        "/users/import/preview",
        content=b"username\n" + b"x" * (300 * 1024),
        headers={"Content-Type": "text/csv", "X-CSRF-Token": admin_client.csrf},
    )
    assert large.status_code == 413


async def test_progress_phases_and_cancel_roll_the_import_back(
    admin_client: LoggedIn, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    import asyncio

    token = progress_token()
    # a column the table lacks is ignored, which keeps the import off the one-pass COPY
    # (admin/csvio/direct.py): its rows are staged and checked before the write
    content = USERS_HEADER.replace("\n", ",remark\n") + "".join(
        f"u{i:05d},u{i}@x.org,U,true,r\n" for i in range(2000)
    )
    async with pool.acquire() as holder, holder.transaction():
        # the import stages the file, then waits for this lock to write
        await holder.execute("LOCK TABLE users IN SHARE MODE")
        running = asyncio.create_task(
            admin_client.http.post(
                f"/users/import?progress={token}",
                data={"csrf_token": admin_client.csrf, "ignore_unknown": "1"},
                files={"file": ("a.csv", content.encode(), "text/csv")},
                headers={"Accept": "application/json"},
            )
        )
        phases: list[str] = []
        async with asyncio.timeout(60):  # a bound, not a timing
            while "checked" not in phases:
                state = await admin_client.get(f"/users/import/progress/{token}")
                if state.status_code == 200:
                    phases = [p["phase"] for p in state.json()["phases"]]
                assert not running.done(), running.result().text
                await asyncio.sleep(0.05)
        # the rules have passed; the write waits for the lock
        assert phases == ["received", "checked"]
        checked = next(p for p in state.json()["phases"] if p["phase"] == "checked")
        assert checked["rows"] == 2000
        cancel = await admin_client.post(
            f"/users/import/progress/{token}/cancel", headers={"X-CSRF-Token": admin_client.csrf}
        )
        assert cancel.status_code == 202
        response = await running
    assert response.status_code == 200
    assert response.json()["outcome"] == "cancelled"
    assert await conn.fetchval("SELECT count(*) FROM users") == 0
    final = await admin_client.get(f"/users/import/progress/{token}")
    assert final.json()["outcome"] == "cancelled"
    again = await admin_client.post(
        f"/users/import/progress/{token}/cancel", headers={"X-CSRF-Token": admin_client.csrf}
    )
    assert again.status_code == 404


async def test_cancel_while_the_one_pass_copy_waits_rolls_the_import_back(
    admin_client: LoggedIn, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    import asyncio

    token = progress_token()
    content = USERS_HEADER + "".join(f"w{i:05d},w{i}@x.org,W,true\n" for i in range(2000))
    waiting = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND query LIKE 'COPY %' AND wait_event_type = 'Lock'"
    )
    async with pool.acquire() as holder, holder.transaction():
        # the one-pass COPY into users waits for this lock
        await holder.execute("LOCK TABLE users IN SHARE MODE")
        running = asyncio.create_task(
            admin_client.http.post(
                f"/users/import?progress={token}",
                data={"csrf_token": admin_client.csrf},
                files={"file": ("a.csv", content.encode(), "text/csv")},
                headers={"Accept": "application/json"},
            )
        )
        async with asyncio.timeout(60):  # a bound, not a timing
            while not await conn.fetchval(waiting):
                assert not running.done(), running.result().text
                await asyncio.sleep(0.05)
        state = await admin_client.get(f"/users/import/progress/{token}")
        assert [p["phase"] for p in state.json()["phases"]] == ["received"]
        cancel = await admin_client.post(
            f"/users/import/progress/{token}/cancel", headers={"X-CSRF-Token": admin_client.csrf}
        )
        assert cancel.status_code == 202
        async with asyncio.timeout(60):
            response = await running
    assert response.status_code == 200
    assert response.json()["outcome"] == "cancelled"
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_a_finished_import_went_through_every_phase_in_order(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    token = progress_token()
    content = USERS_HEADER + "".join(f"p{i:05d},p{i}@x.org,P,true\n" for i in range(300))
    response = await admin_client.http.post(
        f"/users/import?progress={token}",
        data={"csrf_token": admin_client.csrf},
        files={"file": ("p.csv", content.encode(), "text/csv")},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    state = (await admin_client.get(f"/users/import/progress/{token}")).json()
    assert state["outcome"] == "finished"
    phases = state["phases"]
    assert [p["phase"] for p in phases] == ["received", "checked", "written", "indexes"]
    assert [p["rows"] for p in phases] == [None, 300, 300, 300]
    elapsed = [p["elapsed"] for p in phases]
    assert elapsed == sorted(elapsed) and elapsed[-1] <= state["elapsed"]
    assert await conn.fetchval("SELECT count(*) FROM users") == 300


async def test_five_thousand_columns_are_refused_in_words(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    header = "username,email," + ",".join(f"extra{i}" for i in range(4998))
    response = await admin_client.http.post(
        "/users/import?ignore_unknown=1",
        data={"csrf_token": admin_client.csrf},
        files={"file": ("wide.csv", f"{header}\nann,a@x.org\n".encode(), "text/csv")},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["message"] == "the header has 5,000 columns; a file may have at most 1,599"
    assert await conn.fetchval("SELECT count(*) FROM users") == 0
