"""CSV export: filters, spreadsheet safety, raw round trip, audit; streaming on a live server."""

from __future__ import annotations

import asyncio
import csv
import io
import re

import asyncpg
import httpx

from tests.conftest import TEST_SECRET_KEY, LoggedIn, create_staff, log_in
from tests.csv_helpers import USERS_HEADER, table_rows, upload
from tests.live import live_server

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
    response = await admin_client.get("/users/export.csv")
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
    assert list(rows["zoe"]) == ["id", "username", "email", "full_name", "is_active", "created_at"]


async def test_raw_export_then_upsert_changes_nothing(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    assert (await upload(admin_client, "users", AWKWARD)).status_code == 200
    await conn.execute("UPDATE users SET full_name = 'changed once' WHERE username = 'zoe'")
    before = await table_rows(conn, "users")
    exported = await admin_client.get("/users/export.csv?raw=1")
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
    exported = await admin_client.get("/users/export.csv?raw=1")
    await conn.execute("DELETE FROM users")
    response = await upload(admin_client, "users", exported.content, mode="insert")
    assert response.status_code == 200, response.text
    after = [dict(r) for r in await conn.fetch(f"SELECT {columns} FROM users ORDER BY id")]
    assert after == before


async def test_export_honours_the_list_filters_and_sort(admin_client: LoggedIn):
    content = USERS_HEADER + (
        "alpha,alpha@example.com,Alpha,true\n"
        "bravo,bravo@example.com,Bravo,false\n"
        "charlie,charlie@example.com,Charlie,true\n"
    )
    await upload(admin_client, "users", content)
    response = await admin_client.get("/users/export.csv?active=true&sort=username&dir=desc")
    assert [r["username"] for r in parse(response.text)] == ["charlie", "alpha"]
    searched = await admin_client.get("/users/export.csv?q=brav")
    assert [r["username"] for r in parse(searched.text)] == ["bravo"]
    bad = await admin_client.get("/users/export.csv?sort=password")
    assert bad.status_code == 400


async def test_export_writes_an_audit_entry_with_filters_and_rows(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    await upload(admin_client, "users", AWKWARD)
    await admin_client.get("/users/export.csv?active=false")
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
    exported = await admin_client.get("/orders/export.csv?raw=1&status=paid")
    rows = parse(exported.text)
    assert [(r["status"], r["total"]) for r in rows] == [("paid", "12.50")]
    full = await admin_client.get("/orders/export.csv?raw=1")
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
                async with http.stream("GET", "/users/export.csv") as response:
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
                whole = await http.get("/users/export.csv")
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
