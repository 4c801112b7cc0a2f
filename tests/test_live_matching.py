"""GET /<table>/matching: which changed keys a list view would show (its search, filters,
sort window), for live lists counting new rows; permission-checked like the list."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import asyncpg

from tests.conftest import LoggedIn


async def _categories(conn: asyncpg.Connection, names: list[str]) -> list[int]:
    rows = await conn.fetch(
        "INSERT INTO categories (name) SELECT unnest($1::text[]) RETURNING id", names
    )
    return [row["id"] for row in rows]


async def test_only_keys_the_search_and_page_window_would_show(
    staff_client: LoggedIn, conn: asyncpg.Connection
):
    http = staff_client.http
    ids = await _categories(conn, ["Green tea", "Coffee", "Iced tea", "Mate", "Black tea"])
    keys = "&".join(f"key={i}" for i in ids)
    found = await http.get(f"/categories/matching?q=tea&{keys}")
    assert found.status_code == 200
    assert found.json() == {"keys": [str(ids[0]), str(ids[2]), str(ids[4])]}
    # a page of two, sorted by name: the window ends at its last row
    page = (await http.get("/categories?sort=name&limit=2")).text
    assert re.findall(r'id="row-(\d+)"', page) == [str(ids[4]), str(ids[1])]  # Black, Coffee
    # the cursor the page's Next link carries, read the way static/live.js reads it
    link = re.search(r'href="([^"]*)"[^>]*rel="next"', page)
    assert link is not None
    after = parse_qs(urlsplit(html.unescape(link.group(1))).query)["after"][0]
    window = await http.get(f"/categories/matching?sort=name&limit=2&end={after}&{keys}")
    # rows sorting before the page's last row (that row bounds it and is shown already)
    assert window.json() == {"keys": [str(ids[4])]}
    # the second page: after its cursor
    second = await http.get(f"/categories/matching?sort=name&limit=2&after={after}&{keys}")
    assert second.json() == {"keys": [str(ids[0]), str(ids[2]), str(ids[3])]}
    # a key that no longer exists matches nothing
    assert (await http.get("/categories/matching?key=999999")).json() == {"keys": []}


async def test_bad_keys_and_tables_it_may_not_view_are_refused(
    staff_client: LoggedIn, conn: asyncpg.Connection
):
    http = staff_client.http
    assert (await http.get("/categories/matching")).status_code == 400
    assert (await http.get("/categories/matching?key=abc")).status_code == 400
    many = "&".join(f"key={i}" for i in range(201))
    assert (await http.get(f"/categories/matching?{many}")).status_code == 400
    assert (await http.get("/categories/matching?key=1&sort=nope")).status_code == 400
    await conn.execute("CREATE TABLE secret_notes (id int PRIMARY KEY, body text)")
    assert (await http.get("/secret_notes/matching?key=1")).status_code in (403, 404)
