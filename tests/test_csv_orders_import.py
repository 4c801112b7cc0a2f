"""Orders import: references to users, statuses, amounts, upsert by id."""

from __future__ import annotations

import asyncpg

from tests.conftest import LoggedIn
from tests.csv_helpers import USERS_HEADER, table_rows, upload


async def _user(admin_client: LoggedIn, conn: asyncpg.Connection) -> int:
    await upload(admin_client, "users", USERS_HEADER + "ann,ann@example.com,Ann,true\n")
    return int(await conn.fetchval("SELECT id FROM users WHERE username = 'ann'"))


async def test_orders_insert_writes_rows_and_events(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    uid = await _user(admin_client, conn)
    content = f"total,user_id,status\n10.00,{uid},paid\n3.5,{uid},\n"
    response = await upload(admin_client, "orders", content)
    assert response.status_code == 200, response.text
    rows = await table_rows(conn, "orders")
    assert [(r["status"], str(r["total"])) for r in rows] == [
        ("paid", "10.00"),
        ("pending", "3.50"),
    ]
    assert await conn.fetchval("SELECT count(*) FROM order_events WHERE kind = 'created'") == 2


async def test_orders_bad_values_are_reported(admin_client: LoggedIn, conn: asyncpg.Connection):
    uid = await _user(admin_client, conn)
    content = (
        "user_id,status,total,created_at\n"
        f"{uid},lost,1.00,\n"  # line 2: status
        f"{uid + 1000},paid,1.00,\n"  # line 3: no such user
        f"{uid},paid,-4,\n"  # line 4: negative
        f"{uid},paid,12345678901.00,\n"  # line 5: too many digits
        f"abc,paid,1,yesterday-ish\n"  # line 6: user_id and created_at
    )
    response = await upload(admin_client, "orders", content)
    assert response.status_code == 422
    found = {(e["line"], e["column"]) for e in response.json()["errors"]}
    assert found == {
        (2, "status"),
        (3, "user_id"),
        (4, "total"),
        (5, "total"),
        (6, "user_id"),
        (6, "created_at"),
    }
    assert await conn.fetchval("SELECT count(*) FROM orders") == 0


async def test_orders_upsert_needs_id_and_updates_by_it(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    uid = await _user(admin_client, conn)
    missing = await upload(admin_client, "orders", f"user_id,total\n{uid},1\n", mode="upsert")
    assert missing.status_code == 422
    assert "missing required column 'id'" in missing.json()["errors"][0]["message"]
    await upload(admin_client, "orders", f"id,user_id,total\n7,{uid},1.00\n8,{uid},2.00\n")
    content = (
        f"id,user_id,status,total\n7,{uid},shipped,1.00\n8,{uid},pending,2.00\n9,{uid},paid,5\n"
    )
    response = await upload(admin_client, "orders", content, mode="upsert")
    body = response.json()
    assert (body["inserted"], body["updated"], body["unchanged"]) == (1, 1, 1)
    statuses = {r["id"]: (r["status"], r["version"]) for r in await table_rows(conn, "orders")}
    assert statuses == {7: ("shipped", 2), 8: ("pending", 1), 9: ("paid", 1)}
    empty_id = await upload(admin_client, "orders", f"id,user_id,total\n,{uid},1\n", mode="upsert")
    assert empty_id.status_code == 422
    assert empty_id.json()["errors"][0]["message"] == "is required"
