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

    return cursors.decode(raw, table, query.sort_keys)


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


async def test_a_total_the_page_contradicts_is_not_counted_up_front(staff_client, conn) -> None:
    # 120 orders of one customer. Before ANALYZE the planner guesses a handful, which the
    # full page contradicts; after it, the declaration still says such searches may match
    # anything (a common name: a count of every order), so neither is counted up front
    await conn.execute(
        "INSERT INTO users (username, email, full_name) VALUES ('smithy', 's@x.io', 'S')"
    )
    await conn.execute(
        "INSERT INTO orders (user_id, total, status)"
        " SELECT (SELECT id FROM users WHERE username = 'smithy'), g, 'paid'"
        " FROM generate_series(1, 120) AS g"
    )
    response = await staff_client.get("/orders?q=smithy")
    assert response.status_code == 200
    assert "more than 50 orders" in response.text and "exact count" in response.text
    await conn.execute("ANALYZE users; ANALYZE orders")
    response = await staff_client.get("/orders?q=smithy")
    assert "more than 50 orders" in response.text
    count = await staff_client.get("/orders/count?q=smithy", headers={"HX-Request": "true"})
    assert "120 exactly" in count.text
    # a first page with nothing after it is its own exact total, estimate or not
    response = await staff_client.get("/orders?q=smithy&limit=200")
    assert "120 orders" in response.text and "more than" not in response.text


async def test_a_search_on_a_big_table_looks_in_order_first_and_is_not_counted(conn) -> None:
    # the planner's guess for a text pattern is often 100 whatever it matches: on a big
    # table a plain search tries the list's order first, and a full page is not counted
    await conn.execute(
        "INSERT INTO users (username, email, full_name)"
        " SELECT 'pat' || g, 'pat' || g || '@x.io', 'P' FROM generate_series(1, 60) AS g"
    )
    for estimated_rows, expected in ((60.0, False), (500_000.0, True)):
        registry = Registry(["public"])  # this test's own: its table is changed below
        await registry.refresh(conn)
        table = registry.tables["users"]
        table.info = replace(table.info, estimated_rows=estimated_rows)
        query = ListQuery.from_params(table, {"q": "pat"})
        assert reads.dense_search(query, 100.0) is expected
        # a filter may leave few rows in order: then only the planner's estimate decides
        filtered = ListQuery.from_params(table, {"q": "pat", "active": "true"})
        assert reads.dense_search(filtered, 100.0) is False
        page = await reads.fetch_page(conn, query, table.list_select, dense=expected)
        assert len(page.rows) == 50 and page.next_cursor is not None
        total = await reads.settle_total(conn, query, reads.Total(100, False, 100.0), page)
        assert (total.exact, total.at_least) == ((False, True) if expected else (True, False))
        assert total.value == (50 if expected else 60)


async def test_a_rare_match_on_a_big_table_is_collected_through_the_index(conn) -> None:
    # four matches in the first rows in order: too few for a page, so every match is read
    # through the search index and sorted, which must give the index's own pages
    await conn.execute(
        """
        INSERT INTO users (username, email, full_name)
        SELECT 'user' || g, CASE WHEN g % 100 = 0 THEN 'rare' ELSE 'common' END || g || '@x.io',
               'Jo ' || g
        FROM generate_series(1, 400) AS g
        """
    )
    registry = Registry(["public"])
    await registry.refresh(conn)
    table = registry.tables["users"]
    assert table.search.indexed
    table.info = replace(table.info, estimated_rows=1_000_000.0)
    for params in ({"q": "rare", "limit": "3"}, {"q": "rare", "sort": "email", "dir": "desc"}):
        query = ListQuery.from_params(table, params)
        assert reads._collect_matches(query, 4) and not reads._collect_matches(query, 40)
        in_order = await _pages(conn, query, dense=True)
        assert in_order == await _pages(conn, query, dense=False)
        assert len({i for page in in_order for i in page}) == 4
