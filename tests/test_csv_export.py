"""CSV export: filters, spreadsheet safety, raw round trip, audit, who may start one;
streaming on a live server."""

from __future__ import annotations

import asyncio
import csv
import io
import re

import asyncpg
import httpx

from admin.csvio.formulas import LEADING_SPACE, TRIGGERS, needs_quote, neutralised
from tests.conftest import TEST_SECRET_KEY, LoggedIn, create_staff, log_in
from tests.csv_helpers import USERS_HEADER, table_rows, upload
from tests.live import live_server

# what a browser sends for a link clicked on one of the panel's own pages
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}

AWKWARD = (
    "username,email,full_name,is_active\n"
    'ann,ann@example.com,"=HYPERLINK(""http://evil"")",true\n'
    'bob,bob@example.com,"+1 555, ""quoted""",false\n'
    'cyd,cyd@example.com,"@SUM(A1)\nsecond line",true\n'
    "-dash,dash@example.com,-minus,true\n"
    'tab,tab@example.com,"\tTabbed",true\n'
    "zoe,zoe@example.com,Zoë 東京,true\n"
    'eve,eve@example.com,"",false\n'
)


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_export_neutralises_formulas_by_default(admin_client: LoggedIn):
    assert (await upload(admin_client, "users", AWKWARD)).status_code == 200
    response = await admin_client.get("/users/export.csv", headers=SAME_ORIGIN)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="users-\d{8}-\d{6}\.csv"', disposition)
    rows = {r["username"]: r for r in parse(response.text)}
    assert rows["ann"]["full_name"] == '\'=HYPERLINK("http://evil")'
    assert rows["bob"]["full_name"] == '\'+1 555, "quoted"'
    assert rows["cyd"]["full_name"] == "'@SUM(A1)\nsecond line"
    assert rows["'-dash"]["full_name"] == "'-minus"
    assert rows["tab"]["full_name"] == "'\tTabbed"
    assert rows["zoe"]["full_name"] == "Zoë 東京"
    assert list(rows["zoe"]) == [
        "id", "username", "email", "full_name", "is_active", "created_at", "version"
    ]  # fmt: skip


async def test_raw_export_then_upsert_changes_nothing(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    assert (await upload(admin_client, "users", AWKWARD)).status_code == 200
    await conn.execute("UPDATE users SET full_name = 'changed once' WHERE username = 'zoe'")
    before = await table_rows(conn, "users")
    exported = await admin_client.get("/users/export.csv?raw=1", headers=SAME_ORIGIN)
    assert "=HYPERLINK" in exported.text and "'=" not in exported.text
    response = await upload(admin_client, "users", exported.content, mode="upsert")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["updated"], body["unchanged"]) == (0, 0, len(before))
    assert await table_rows(conn, "users") == before


async def test_raw_export_imports_into_an_empty_table_identically(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    assert (await upload(admin_client, "users", AWKWARD)).status_code == 200
    columns = "id, username, email, full_name, is_active, created_at"
    before = [dict(r) for r in await conn.fetch(f"SELECT {columns} FROM users ORDER BY id")]
    exported = await admin_client.get("/users/export.csv?raw=1", headers=SAME_ORIGIN)
    await conn.execute("DELETE FROM users")
    response = await upload(admin_client, "users", exported.content, mode="insert")
    assert response.status_code == 200, response.text
    after = [dict(r) for r in await conn.fetch(f"SELECT {columns} FROM users ORDER BY id")]
    assert after == before


async def test_export_honours_the_list_filters_and_sort(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = USERS_HEADER + (
        "alpha,alpha@example.com,Alpha,true\n"
        "bravo,bravo@example.com,Bravo,false\n"
        "charlie,charlie@example.com,Charlie,true\n"
    )
    await upload(admin_client, "users", content)
    response = await admin_client.get(
        "/users/export.csv?active=true&sort=username&dir=desc", headers=SAME_ORIGIN
    )
    assert [r["username"] for r in parse(response.text)] == ["charlie", "alpha"]
    searched = await admin_client.get("/users/export.csv?q=brav", headers=SAME_ORIGIN)
    assert [r["username"] for r in parse(searched.text)] == ["bravo"]
    bad = await admin_client.get("/users/export.csv?sort=password", headers=SAME_ORIGIN)
    assert bad.status_code == 400
    # a declared search with its own subquery runs inside the export's SELECT too
    alpha = await conn.fetchval("SELECT id FROM users WHERE username = 'alpha'")
    await conn.execute(
        "INSERT INTO orders (user_id, status, total) VALUES ($1, 'pending', 5)", alpha
    )
    for q, expected in (("alph", 1), ("brav", 0)):
        orders = await admin_client.get(f"/orders/export.csv?q={q}", headers=SAME_ORIGIN)
        assert orders.status_code == 200, orders.text
        assert len(parse(orders.text)) == expected


async def test_export_writes_an_audit_entry_with_filters_and_rows(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    await upload(admin_client, "users", AWKWARD)
    await admin_client.get("/users/export.csv?active=false", headers=SAME_ORIGIN)
    entry = await conn.fetchrow("SELECT * FROM audit_log WHERE action = 'csv_export'")
    assert entry["resource"] == "users"
    assert entry["after"]["filters"] == {"active": "false"}
    assert entry["after"]["rows"] == 2
    assert entry["after"]["outcome"] == "completed"


async def test_orders_export_and_round_trip(admin_client: LoggedIn, conn: asyncpg.Connection):
    await upload(admin_client, "users", USERS_HEADER + "ann,ann@example.com,Ann,true\n")
    user_id = await conn.fetchval("SELECT id FROM users")
    orders = "user_id,status,total\n" + f"{user_id},paid,12.50\n{user_id},pending,0\n"
    assert (await upload(admin_client, "orders", orders)).status_code == 200
    before = await table_rows(conn, "orders")
    exported = await admin_client.get("/orders/export.csv?raw=1&status=paid", headers=SAME_ORIGIN)
    rows = parse(exported.text)
    assert [(r["status"], r["total"]) for r in rows] == [("paid", "12.50")]
    full = await admin_client.get("/orders/export.csv?raw=1", headers=SAME_ORIGIN)
    response = await upload(admin_client, "orders", full.content, mode="upsert")
    assert response.json()["unchanged"] == 2
    assert await table_rows(conn, "orders") == before


async def test_live_export_streams_and_a_client_that_leaves_ends_the_copy(
    database_url: str, tmp_path
):  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO users (username, email, full_name) "
            "SELECT 'user' || g, 'user' || g || '@example.com', repeat('x', 100) "
            "FROM generate_series(1, 200000) g"
        )
        await create_staff(conn, "boss", "admin")
        with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                await log_in(http, "boss")
                async with http.stream("GET", "/users/export.csv", headers=SAME_ORIGIN) as response:
                    assert response.status_code == 200
                    received = 0
                    async for chunk in response.aiter_bytes():
                        received += len(chunk)
                        if received > 1_000_000:
                            break
                # the client went away: no backend may stay in COPY, and the pool gets it back
                for _ in range(50):
                    busy = await conn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT%'"
                        " AND state <> 'idle' AND pid <> pg_backend_pid()"
                    )
                    if busy == 0:
                        break
                    await asyncio.sleep(0.1)
                assert busy == 0
                whole = await http.get("/users/export.csv", headers=SAME_ORIGIN)
                assert whole.status_code == 200
                assert len(parse(whole.text)) == 200000
        outcomes = await conn.fetch(
            "SELECT after->>'outcome' AS o, after->>'rows' AS rows FROM audit_log"
            " WHERE action = 'csv_export' ORDER BY id"
        )
        assert [r["o"] for r in outcomes] == ["aborted", "completed"]
        assert outcomes[1]["rows"] == "200000"
    finally:
        await conn.close()


async def test_an_export_runs_on_the_one_connection_its_request_took(database_url: str, tmp_path):  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO users (username, email, full_name) "
            "SELECT 'user' || g, 'user' || g || '@example.com', 'Name ' || g "
            "FROM generate_series(1, 5000) g"
        )
        await create_staff(conn, "boss", "admin")
        # a pool of one: an export that took a connection of its own beside the request's
        # would wait for it until the pool's timeout, then answer 503
        env = {"POOL_MIN_SIZE": "1", "POOL_MAX_SIZE": "1", "POOL_ACQUIRE_TIMEOUT": "10"}
        with live_server(database_url, TEST_SECRET_KEY, tmp_path, extra_env=env) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                await log_in(http, "boss")
                for path in ("/users/export.csv", "/users/export.csv?q=user42&raw=1"):
                    response = await http.get(path, headers=SAME_ORIGIN)
                    assert response.status_code == 200, response.text[:500]
                    assert parse(response.text)
                # and the connection went back to the pool: the next page gets it
                assert (await http.get("/users")).status_code == 200
        outcomes = await conn.fetch(
            "SELECT after->>'outcome' AS o FROM audit_log WHERE action = 'csv_export' ORDER BY id"
        )
        assert [r["o"] for r in outcomes] == ["completed", "completed"]
    finally:
        await conn.close()


# ---- spreadsheet formulas: every way a cell can start one (OWASP CSV injection)

FORMULA_VARIANTS = {
    "equals": "=1+1",
    "plus": "+1+1",
    "minus": "-1+1",
    "at": "@SUM(A1)",
    "tab": "\tTabbed",
    "cr": "\r=1+1",
    "lf": "\n=1+1",
    "space equals": " =1+1",
    "spaces plus": "   +1",
    "nbsp at": "\xa0@SUM(A1)",
    "ideographic space minus": "\u3000-1",
    "zero-width space equals": "\u200b=1",
    "space then tab": " \tx",
    "fullwidth equals": "\uff1d1+1",
    "fullwidth plus": "\uff0b1",
    "fullwidth minus": "\uff0d1",
    "fullwidth at": "\uff20SUM(A1)",
    "space fullwidth equals": " \uff1d1",
    "small equals": "\ufe661",
}
HARMLESS = ["plain", "", " plain", "a=b", "1-2", "x@example.com", "  ", "'=already"]


async def _users_with_names(conn: asyncpg.Connection, names: list[str]) -> dict[str, str]:
    """One user per full name; returns username -> full name."""
    users = {f"u{i:03d}": name for i, name in enumerate(names)}
    await conn.executemany(
        "INSERT INTO users (username, email, full_name) VALUES ($1, $1 || '@example.com', $2)",
        list(users.items()),
    )
    return users


async def test_export_neutralises_every_formula_variant(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    names = list(FORMULA_VARIANTS.values()) + HARMLESS
    users = await _users_with_names(conn, names)
    exported = {r["username"]: r["full_name"] for r in parse(
        (await admin_client.get("/users/export.csv", headers=SAME_ORIGIN)).text
    )}  # fmt: skip
    for label, value in FORMULA_VARIANTS.items():
        username = next(u for u, n in users.items() if n == value)
        assert exported[username] == "'" + value, label
    for value in HARMLESS:
        username = next(u for u, n in users.items() if n == value)
        assert exported[username] == value, repr(value)

    raw = {r["username"]: r["full_name"] for r in parse(
        (await admin_client.get("/users/export.csv?raw=1", headers=SAME_ORIGIN)).text
    )}  # fmt: skip
    assert raw == users


async def test_formula_rule_in_sql_matches_the_python_rule(conn: asyncpg.Connection):
    starts = [*TRIGGERS, "a", "1", "'", "é", "\u2212"]
    spaces = ["", *LEADING_SPACE, "  ", " \xa0"]
    values = [space + start + "x" for space in spaces for start in starts]
    values += ["", " ", *LEADING_SPACE]
    rows = await conn.fetch(
        f"SELECT v, {neutralised('v')} AS safe FROM unnest($1::text[]) AS t(v)", values
    )
    assert len(rows) == len(values)
    for row in rows:
        expected = "'" + row["v"] if needs_quote(row["v"]) else row["v"]
        assert row["safe"] == expected, repr(row["v"])
    assert needs_quote(" \uff1d1") and needs_quote("\n1") and not needs_quote(" 1")


# ---- who may start an export: same-origin GET, or POST with the CSRF token


async def _export_entries(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'csv_export'"))


async def test_head_answers_the_headers_without_exporting(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    await _users_with_names(conn, ["Ann"])
    for headers in ({}, SAME_ORIGIN, {"Sec-Fetch-Site": "cross-site"}):
        response = await admin_client.http.head("/users/export.csv?active=true", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert response.headers["content-disposition"].startswith("attachment;")
        assert response.content == b""
    assert await _export_entries(conn) == 0


CROSS_SITE_GETS = {
    "no proof at all": {},
    "cross-site": {"Sec-Fetch-Site": "cross-site"},
    "same-site": {"Sec-Fetch-Site": "same-site"},
    "foreign origin": {"Origin": "http://evil.example"},
    "foreign referer": {"Referer": "http://evil.example/page"},
    "null origin": {"Origin": "null"},
    "fetch metadata beats a forged referer": {
        "Sec-Fetch-Site": "cross-site",
        "Referer": "http://testserver/users",
    },
}


async def test_get_from_elsewhere_gets_a_download_button_and_exports_nothing(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    await _users_with_names(conn, ["Ann"])
    for label, headers in CROSS_SITE_GETS.items():
        page = await admin_client.get("/users/export.csv?active=true&q=an", headers=headers)
        assert page.status_code == 200, label
        assert page.headers["content-type"].startswith("text/html"), label
        assert "content-disposition" not in page.headers, label
        assert "Download users.csv" in page.text, label
        form = re.search(r'<form method="post" action="(/users/export[^"]*)"', page.text)
        assert form and form.group(1) == "/users/export.csv?active=true&amp;q=an", label
        assert f'name="csrf_token" value="{admin_client.csrf}"' in page.text, label
    assert await _export_entries(conn) == 0

    # the button on that page downloads the same query
    response = await admin_client.post("/users/export.csv?active=true&q=an")
    assert response.status_code == 200
    assert [r["full_name"] for r in parse(response.text)] == ["Ann"]
    entry = await conn.fetchrow("SELECT after FROM audit_log WHERE action = 'csv_export'")
    assert entry["after"]["filters"] == {"active": "true", "q": "an"}


SAME_ORIGIN_GETS = {
    "same-origin": SAME_ORIGIN,
    "typed address": {"Sec-Fetch-Site": "none"},
    "own referer, no fetch metadata": {"Referer": "http://testserver/users?q=a"},
    "own origin, no fetch metadata": {"Origin": "http://testserver"},
}


async def test_get_from_the_panel_itself_downloads_directly(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    await _users_with_names(conn, ["Ann"])
    for label, headers in SAME_ORIGIN_GETS.items():
        response = await admin_client.get("/users/export.csv", headers=headers)
        assert response.status_code == 200, label
        assert response.headers["content-type"].startswith("text/csv"), label
        assert [r["full_name"] for r in parse(response.text)] == ["Ann"], label
    assert await _export_entries(conn) == len(SAME_ORIGIN_GETS)


async def test_post_export_needs_the_csrf_token_and_this_origin(
    admin_client: LoggedIn, staff_client: LoggedIn, conn: asyncpg.Connection
):
    await _users_with_names(conn, ["Ann"])
    http = admin_client.http
    with_header = await http.post("/orders/export.csv", headers={"X-CSRF-Token": admin_client.csrf})
    assert with_header.status_code == 200
    assert with_header.text.startswith("id,user_id,status,total,created_at")
    refused = [
        await http.post("/users/export.csv"),
        await http.post("/users/export.csv", data={"csrf_token": "forged"}),
        await http.post(
            "/users/export.csv",
            data={"csrf_token": admin_client.csrf},
            headers={"Origin": "http://evil.example"},
        ),
        await staff_client.post("/users/export.csv"),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert await _export_entries(conn) == 1
