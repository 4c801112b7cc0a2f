"""/audit: newest first, filters, keyset pagination, and its use as a record's history."""

from __future__ import annotations

import re

import asyncpg

from admin import audit
from admin.staff import table as staff_table
from tests.conftest import LoggedIn
from tests.snapshot import snapshot

ROW_ID = re.compile(r'<tr data-id="(\d+)"')


def ids(html: str) -> list[int]:
    return [int(found) for found in ROW_ID.findall(html)]


async def write_entries(conn: asyncpg.Connection, count: int, **kw: object) -> None:
    member = await staff_table.get(conn, await conn.fetchval("SELECT min(id) FROM staff"))
    async with conn.transaction():
        for number in range(count):
            await audit.record(
                conn,
                staff=member,
                action=str(kw.get("action", "update")),
                resource=str(kw.get("resource", "users")),
                resource_id=kw.get("resource_id", number),
                before={"full_name": f"old {number}"},
                after={"full_name": f"new {number}"},
            )


async def test_newest_first_with_keyset_pages(admin_client: LoggedIn, conn):
    await write_entries(conn, 120)
    first = await admin_client.get("/audit")
    assert first.status_code == 200
    newest = await conn.fetchval("SELECT max(id) FROM audit_log")
    page_one = ids(first.text)
    assert page_one == list(range(newest, newest - 50, -1))
    match = re.search(r'href="(/audit\?before=\d+)" rel="next"', first.text)
    assert match
    second = await admin_client.get(match.group(1))
    assert ids(second.text) == list(range(newest - 50, newest - 100, -1))
    # entries written after the first page was read do not shift the next page
    await write_entries(conn, 3)
    again = await admin_client.get(match.group(1))
    assert ids(again.text) == ids(second.text)


async def test_filters_combine(admin_client: LoggedIn, conn):
    await write_entries(conn, 3, resource="users", resource_id=7)
    await write_entries(conn, 2, resource="orders", resource_id=7)
    await write_entries(conn, 2, resource="users", resource_id=8, action="delete")
    response = await admin_client.get("/audit", params={"resource": "users", "resource_id": "7"})
    expected = await conn.fetch(
        "SELECT id FROM audit_log WHERE resource = 'users' AND resource_id = '7' ORDER BY id DESC"
    )
    assert ids(response.text) == [row["id"] for row in expected]
    deletes = await admin_client.get("/audit", params={"action": "delete"})
    assert len(ids(deletes.text)) == 2
    by_staff = await admin_client.get("/audit", params={"staff": "boss", "resource": "orders"})
    assert len(ids(by_staff.text)) == 2
    nobody = await admin_client.get("/audit", params={"staff": "nobody"})
    assert ids(nobody.text) == [] and "No entries match" in nobody.text


async def test_a_records_history_url_and_the_htmx_fragment(admin_client: LoggedIn, conn):
    await write_entries(conn, 2, resource="users", resource_id=42)
    url = audit.history_url("users", 42)
    assert url == "/audit?resource=users&resource_id=42"
    fragment = await admin_client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="audit-table">')
    assert "<html" not in fragment.text
    assert len(ids(fragment.text)) == 2
    assert "old 1" in fragment.text and "new 1" in fragment.text


async def test_bad_audit_queries_are_400(admin_client: LoggedIn, conn):
    before = await snapshot(conn)
    for params in (
        {"before": "abc"},
        {"before": "-1"},
        {"resource": "x" * 201},
        {"action": "a\x00b"},
    ):
        response = await admin_client.get("/audit", params=params)
        assert response.status_code == 400, params
    assert await snapshot(conn) == before


async def test_staff_role_gets_403(staff_client: LoggedIn):
    assert (await staff_client.get("/audit")).status_code == 403
