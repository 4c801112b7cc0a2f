"""A search expected to match many rows first walks the list in order: same pages either way."""

from __future__ import annotations

from dataclasses import replace

import asyncpg

from admin.resources import reads
from admin.resources.query import ListQuery
from admin.resources.registry import Registry


async def _pages(conn: asyncpg.Connection, query: ListQuery, *, dense: bool) -> list[list[int]]:
    """Every page's ids, forwards to the end and then backwards from it."""
    table = query.table
    pages, current = [], query
    while True:
        page = await reads.fetch_page(conn, current, table.list_select, dense=dense)
        pages.append([r["id"] for r in page.rows])
        if page.next_cursor is None:
            break
        current = replace(query, after=_decoded(table, query, page.next_cursor))
    while page.prev_cursor is not None:
        current = replace(query, before=_decoded(table, query, page.prev_cursor))
        page = await reads.fetch_page(conn, current, table.list_select, dense=dense)
        pages.append([r["id"] for r in page.rows])
    return pages


def _decoded(table, query, raw):  # type: ignore[no-untyped-def]
    from admin.resources import cursors

    return cursors.decode(raw, table, query.sort)


async def test_the_in_order_search_gives_the_pages_the_index_gives(conn) -> None:
    # every third user matches, the rest do not: pages mix both within the window
    await conn.execute(
        """
        INSERT INTO users (username, email, full_name)
        SELECT 'user' || g,
               CASE WHEN g % 3 = 0 THEN 'smith' ELSE 'brown' END || g || '@example.com',
               'Jo ' || g
        FROM generate_series(1, 400) AS g
        """
    )
    await conn.execute(
        "INSERT INTO orders (user_id, total, status) SELECT id, id % 50, 'paid' FROM users"
    )
    registry = Registry(["public"])
    await registry.refresh(conn)
    for name, params in (
        ("users", {"q": "smith", "limit": "7"}),
        ("users", {"q": "smith", "sort": "email", "dir": "desc", "limit": "9"}),
        ("users", {"q": "smith", "active": "true", "limit": "11"}),
        ("orders", {"q": "smith", "limit": "8"}),
        ("orders", {"q": "smith", "sort": "total", "limit": "10"}),
    ):
        query = ListQuery.from_params(registry.tables[name], params)
        in_order = await _pages(conn, query, dense=True)
        by_index = await _pages(conn, query, dense=False)
        assert in_order == by_index, (name, params)
        assert len({i for page in in_order for i in page}) == 133  # every match, once a page
