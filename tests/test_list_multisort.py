"""Sorting by several columns where an index leads with them: `sort=status,created_at`,
keyset pages forward and back across runs of equal values, headers numbering the order and
offering "then by", and a clear 400 naming what can be combined."""

from __future__ import annotations

import html
import re

import asyncpg

from tests.conftest import LoggedIn
from tests.resource_helpers import make_cursor, row_ids

HX = {"HX-Request": "true"}


async def _orders(conn: asyncpg.Connection) -> None:
    user_id = await conn.fetchval(
        "INSERT INTO users (username, email, full_name) VALUES ('buyer', 'b@example.com', 'B')"
        " RETURNING id"
    )
    # three statuses, three moments: long runs of equal (status, created_at)
    await conn.execute(
        """
        INSERT INTO orders (user_id, status, total, created_at)
        SELECT $1, (ARRAY['paid', 'pending', 'shipped'])[1 + g % 3], g,
               timestamptz '2026-01-01 00:00+00' + (g % 2) * interval '1 day'
        FROM generate_series(1, 30) AS g
        """,
        user_id,
    )


def _link(text: str, rel: str) -> str | None:
    match = re.search(r'<a href="([^"]+)"[^>]*rel="' + rel + '"', text)
    return html.unescape(match.group(1)) if match else None


async def _walk(client: LoggedIn, url: str, rel: str) -> list[int]:
    seen: list[int] = []
    pages = 0
    next_url: str | None = url
    while next_url and pages < 20:
        page = await client.get(next_url)
        assert page.status_code == 200, page.text
        ids = row_ids(page.text)
        seen = seen + ids if rel == "next" else ids + seen
        next_url = _link(page.text, rel)
        pages += 1
    return seen


async def test_a_combined_sort_needs_an_index_and_pages_both_ways(
    staff_client: LoggedIn, admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    await _orders(conn)
    refused = await staff_client.get("/orders?sort=status,created_at")
    assert refused.status_code == 400
    assert "no columns of this list can be combined" in html.unescape(refused.text)
    await conn.execute("CREATE INDEX orders_status_created ON orders (status, created_at)")
    assert (await admin_client.post("/tables/refresh")).status_code in (200, 303)

    for direction in ("asc", "desc"):
        order = "DESC" if direction == "desc" else "ASC"
        expected = [
            r["id"]
            for r in await conn.fetch(
                f"SELECT id FROM orders ORDER BY status {order}, created_at {order}, id {order}"
            )
        ]
        url = f"/orders?sort=status,created_at&dir={direction}&limit=7"
        forward = await _walk(staff_client, url, "next")
        assert forward == expected
        # from the last page (read backwards) to the first by "previous"
        backward = await _walk(staff_client, url + "&last=1", "prev")
        assert backward == expected
        # the sort columns need not be shown for the page cursors to hold them
        assert await _walk(staff_client, url + "&cols=id,total", "next") == expected

    page = await staff_client.get("/orders?sort=status,created_at&limit=7")
    head = page.text.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert re.search(r'<th scope="col"[^>]*aria-sort="ascending">\s*<a[^>]*>Status', head)
    assert head.count("aria-sort") == 1
    assert "▲1" in head and "▲2" in head and "(sorted second)" in head
    # the first column's header turns the whole sort round
    assert "sort=status%2Ccreated_at&amp;dir=desc" in head
    # a page cursor of another sort is refused, not misread
    single = make_cursor("status", "paid", [3])
    stale = await staff_client.get(f"/orders?sort=status,created_at&after={single}")
    assert stale.status_code == 400 and "another sort order" in stale.text


async def test_then_by_is_offered_only_where_an_index_supports_it(
    staff_client: LoggedIn, admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    await _orders(conn)
    plain = await staff_client.get("/orders?sort=status")
    assert 'class="then-by"' not in plain.text
    await conn.execute("CREATE INDEX orders_status_created ON orders (status, created_at)")
    await admin_client.post("/tables/refresh")
    by_status = await staff_client.get("/orders?sort=status&q=", headers=HX)
    link = re.search(
        r'<a class="then-by"[^>]*href="([^"]+)"[^>]*aria-label="([^"]+)"', by_status.text
    )
    assert link, by_status.text
    assert html.unescape(link.group(1)) == "/orders?sort=status%2Ccreated_at&dir=asc"
    assert link.group(2) == "Sort by Status, then by Created ascending"
    # sorted by another column: nothing to extend
    assert 'class="then-by"' not in (await staff_client.get("/orders?sort=total")).text
    for bad in ("created_at,status", "status,total", "status,created_at,total", "status,id"):
        refused = await staff_client.get(f"/orders?sort={bad}")
        assert refused.status_code == 400, bad
        assert "these can be combined (an index supports them): status,created_at" in (
            html.unescape(refused.text)
        ), bad
