"""Orders: list (search, filters, sort, keyset pages), show with history, status, total, delete."""

from __future__ import annotations

import re

import asyncpg
import pytest

from tests.conftest import LoggedIn
from tests.resource_helpers import ORDER_SORTS, row_ids


async def seed(conn: asyncpg.Connection) -> tuple[int, int]:
    smith = await conn.fetchval(
        "INSERT INTO users (username, email, full_name) VALUES ('jsmith', 'js@shop.io', 'J')"
        " RETURNING id"
    )
    other = await conn.fetchval(
        "INSERT INTO users (username, email, full_name) VALUES ('other', 'o@x.io', 'Smith Name')"
        " RETURNING id"
    )
    await conn.execute(
        """
        INSERT INTO orders (user_id, status, total, created_at)
        SELECT CASE WHEN g % 2 = 0 THEN $1::bigint ELSE $2::bigint END,
               (ARRAY['pending','paid','shipped','delivered','cancelled'])[g % 5 + 1],
               g * 1.25, timestamptz '2024-01-01' + g * interval '1 day'
        FROM generate_series(1, 25) AS g
        """,
        smith,
        other,
    )
    return smith, other


def next_link(html: str) -> str | None:
    match = re.search(r'<a href="([^"]+)"[^>]*rel="next"', html)
    return match.group(1).replace("&amp;", "&") if match else None


async def ids_where(conn: asyncpg.Connection, where: str, *args: object) -> list[int]:
    rows = await conn.fetch(f"SELECT id FROM orders WHERE {where} ORDER BY id DESC", *args)
    return [r["id"] for r in rows]


async def test_list_columns_and_fragment(staff_client: LoggedIn, conn) -> None:
    await seed(conn)
    page = await staff_client.get("/orders")
    assert page.status_code == 200 and "jsmith" in page.text
    assert row_ids(page.text) == await ids_where(conn, "true")
    fragment = await staff_client.get("/orders", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and row_ids(fragment.text) == row_ids(page.text)


async def test_search_by_id_and_by_username_or_email(staff_client: LoggedIn, conn) -> None:
    smith, _ = await seed(conn)
    one = (await ids_where(conn, "true"))[3]
    response = await staff_client.get(f"/orders?q={one}")
    assert row_ids(response.text) == [one]
    # matches username/email, not the other user's full name "Smith Name"
    response = await staff_client.get("/orders?q=SMITH")
    assert row_ids(response.text) == await ids_where(conn, "user_id = $1", smith)
    response = await staff_client.get("/orders?q=shop.io")
    assert row_ids(response.text) == await ids_where(conn, "user_id = $1", smith)
    response = await staff_client.get("/orders?q=99999999999999999999999")
    assert response.status_code == 200 and row_ids(response.text) == []


async def test_filters(staff_client: LoggedIn, conn) -> None:
    smith, _ = await seed(conn)
    response = await staff_client.get("/orders?status=paid")
    assert row_ids(response.text) == await ids_where(conn, "status = 'paid'")
    response = await staff_client.get(f"/orders?user={smith}&status=shipped")
    assert row_ids(response.text) == await ids_where(
        conn, "user_id = $1 AND status = 'shipped'", smith
    )
    response = await staff_client.get("/orders?created_from=2024-01-05&created_to=2024-01-07")
    assert row_ids(response.text) == await ids_where(
        conn, "created_at >= '2024-01-05' AND created_at < '2024-01-08'"
    )


@pytest.mark.parametrize("sort", list(ORDER_SORTS))
async def test_sort_pages_walk_every_row(staff_client: LoggedIn, conn, sort: str) -> None:
    await seed(conn)
    column = sort
    expected = [r["id"] for r in await conn.fetch(f'SELECT id FROM orders ORDER BY "{column}", id')]
    seen: list[int] = []
    url: str | None = f"/orders?sort={sort}&dir=asc&limit=7"
    while url:
        response = await staff_client.get(url)
        assert response.status_code == 200
        seen += row_ids(response.text)
        url = next_link(response.text)
    assert seen == expected


@pytest.mark.parametrize(
    "query",
    [
        "status=lost",
        "user=abc",
        "user=1 OR 1=1",
        "created_from=yesterday",
        "created_from=2024-02-01&created_to=2024-01-01",
        "sort=username",
        "sort=total;DELETE FROM orders",
        "limit=1000",
        "after=WyJ0b3RhbCIsIngiLDFd",  # ["total","x",1]
        "sort=total&after=WyJ0b3RhbCIsIngiLDFd",
    ],
)
async def test_bad_parameters_are_400(staff_client: LoggedIn, conn, query: str) -> None:
    await seed(conn)
    response = await staff_client.get(f"/orders?{query}")
    assert response.status_code == 400
    assert await conn.fetchval("SELECT count(*) FROM orders") == 25


async def test_show_with_history_newest_first(staff_client: LoggedIn, conn) -> None:
    await seed(conn)
    order = await conn.fetchrow("SELECT * FROM orders ORDER BY id LIMIT 1")
    await conn.execute("UPDATE orders SET status = 'cancelled' WHERE id = $1", order["id"])
    response = await staff_client.get(f"/orders/{order['id']}")
    assert response.status_code == 200
    assert response.text.index("status changed") < response.text.index("created")
    # the audit log is for admins: a staff member gets no link to a page that would be a 403
    assert f"/audit?resource=orders&amp;resource_id={order['id']}" not in response.text


async def test_change_status_and_total_with_conflict(staff_client: LoggedIn, conn) -> None:
    await seed(conn)
    order = await conn.fetchrow("SELECT * FROM orders WHERE status = 'pending' LIMIT 1")
    oid, version = order["id"], str(order["version"])
    ok = await staff_client.post(f"/orders/{oid}/status", {"status": "paid", "version": version})
    assert ok.status_code == 303
    assert await conn.fetchval("SELECT status FROM orders WHERE id = $1", oid) == "paid"
    stale = await staff_client.post(
        f"/orders/{oid}/status", {"status": "shipped", "version": version}
    )
    assert stale.status_code == 409 and "Saved meanwhile" in stale.text
    assert await conn.fetchval("SELECT status FROM orders WHERE id = $1", oid) == "paid"
    new_version = str(order["version"] + 1)
    edit = await staff_client.post(
        f"/orders/{oid}", {"status": "paid", "total": "12.50", "version": new_version}
    )
    assert edit.status_code == 303
    assert str(await conn.fetchval("SELECT total FROM orders WHERE id = $1", oid)) == "12.50"
    actions = [
        r["action"]
        for r in await conn.fetch(
            "SELECT action FROM audit_log WHERE resource = 'orders' ORDER BY id"
        )
    ]
    assert actions == ["set_status", "update"]


@pytest.mark.parametrize(
    "data", [{"status": "lost"}, {"total": "-1"}, {"total": "abc"}, {"total": "1.001"}]
)
async def test_invalid_order_edit_is_422(staff_client: LoggedIn, conn, data) -> None:
    await seed(conn)
    order = await conn.fetchrow("SELECT * FROM orders LIMIT 1")
    form = {
        "status": order["status"],
        "total": str(order["total"]),
        "version": str(order["version"]),
        **data,
    }
    response = await staff_client.post(f"/orders/{order['id']}", form)
    assert response.status_code == 422
    assert await conn.fetchval("SELECT version FROM orders WHERE id = $1", order["id"]) == 1


async def test_unknown_and_malformed_ids(staff_client: LoggedIn) -> None:
    assert (await staff_client.get("/orders/12345")).status_code == 404
    assert (await staff_client.get("/orders/abc")).status_code == 400
    assert (await staff_client.post("/orders/abc/status", {"status": "paid"})).status_code == 400


async def test_delete_with_confirm(staff_client: LoggedIn, conn) -> None:
    await seed(conn)
    order = await conn.fetchrow("SELECT * FROM orders LIMIT 1")
    confirm = await staff_client.get(f"/orders/{order['id']}/delete")
    assert confirm.status_code == 200
    done = await staff_client.post(
        f"/orders/{order['id']}/delete", {"version": str(order["version"])}
    )
    assert done.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM orders") == 24
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE resource = 'orders' AND action = 'delete'"
        )
        == 1
    )


async def test_bulk_set_status_on_filter(staff_client: LoggedIn, conn) -> None:
    smith, _ = await seed(conn)
    to_change = await conn.fetchval(
        "SELECT count(*) FROM orders WHERE user_id = $1 AND status <> 'cancelled'", smith
    )
    form = {"action": "set_status", "value": "cancelled", "scope": "all", "user": str(smith)}
    confirm = await staff_client.post("/orders/bulk", form)
    assert confirm.status_code == 200 and "Set status to cancelled" in confirm.text
    done = await staff_client.post("/orders/bulk", {**form, "confirm": "yes"})
    assert done.status_code == 303
    changed = await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'bulk_set_status'")
    assert changed == to_change > 0
    left = "SELECT count(*) FROM orders WHERE user_id = $1 AND status <> 'cancelled'"
    assert await conn.fetchval(left, smith) == 0
    bad = await staff_client.post(
        "/orders/bulk", {"action": "set_status", "value": "lost", "scope": "all"}
    )
    assert bad.status_code == 400
