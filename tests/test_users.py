"""Users: list (search, filters, sort, keyset pages, totals), forms, conflicts, bulk actions."""

from __future__ import annotations

import re

import asyncpg
import pytest

from tests.conftest import LoggedIn
from tests.resource_helpers import USER_SORTS, make_cursor, row_ids


async def add_users(conn: asyncpg.Connection, count: int, prefix: str = "user") -> None:
    await conn.execute(
        """
        INSERT INTO users (username, email, full_name, is_active, created_at)
        SELECT $1 || lpad(g::text, 6, '0'), $1 || g || '@example.com', 'Person ' || g,
               g % 3 <> 0, now() - g * interval '1 minute'
        FROM generate_series(1, $2) AS g
        """,
        prefix,
        count,
    )


def link(html: str, rel: str) -> str | None:
    match = re.search(rf'<a href="([^"]+)"[^>]*rel="{rel}"', html)
    return match.group(1).replace("&amp;", "&") if match else None


async def user_id(conn: asyncpg.Connection, username: str) -> int:
    value: int = await conn.fetchval("SELECT id FROM users WHERE username = $1", username)
    return value


# ---- list


async def test_list_shows_columns_and_escapes_html(staff_client: LoggedIn, conn) -> None:
    await conn.execute(
        "INSERT INTO users (username, email, full_name) VALUES ('eve', 'e@x.io', '<b>Eve</b>')"
    )
    response = await staff_client.get("/users")
    assert response.status_code == 200
    assert "&lt;b&gt;Eve&lt;/b&gt;" in response.text
    assert "<b>Eve</b>" not in response.text
    for header in ("ID", "Username", "Email", "Full name", "Active", "Created"):
        assert f">{header}" in response.text


async def test_list_full_page_or_fragment(staff_client: LoggedIn, conn) -> None:
    await add_users(conn, 3)
    page = await staff_client.get("/users")
    fragment = await staff_client.get("/users", headers={"HX-Request": "true"})
    assert "<html" in page.text and 'id="list-table"' in page.text
    assert "<html" not in fragment.text and row_ids(fragment.text) == row_ids(page.text)
    assert 'hx-trigger="input changed delay:300ms, search"' in page.text
    assert 'hx-push-url="true"' in page.text and "data-search" in page.text
    assert "hx-indicator" in page.text
    restore = await staff_client.get(
        "/users", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.text


async def test_empty_states(staff_client: LoggedIn, conn) -> None:
    response = await staff_client.get("/users")
    assert "There are no users yet" in response.text
    await add_users(conn, 2)
    response = await staff_client.get("/users?q=nobody-like-this")
    assert "No users match this search" in response.text


async def test_search_is_case_insensitive_substring_with_wildcards_as_data(
    staff_client: LoggedIn, conn
) -> None:
    await add_users(conn, 20)
    await conn.execute(
        "INSERT INTO users (username, email, full_name) VALUES"
        " ('smith_j', 'JS@corp.example', 'John SMITHERS'), ('a.b', 'percent@x.io', '100% sure')"
    )
    response = await staff_client.get("/users?q=smith")
    assert row_ids(response.text) == [await user_id(conn, "smith_j")]
    response = await staff_client.get("/users?q=CORP.EXAMPLE")
    assert row_ids(response.text) == [await user_id(conn, "smith_j")]
    response = await staff_client.get("/users?q=%25")
    assert row_ids(response.text) == [await user_id(conn, "a.b")]
    response = await staff_client.get("/users?q=_")
    assert row_ids(response.text) == [await user_id(conn, "smith_j")]


async def test_filter_active(staff_client: LoggedIn, conn) -> None:
    await add_users(conn, 9)
    inactive = await conn.fetch("SELECT id FROM users WHERE NOT is_active ORDER BY id")
    response = await staff_client.get("/users?active=false")
    assert row_ids(response.text) == [r["id"] for r in inactive]
    assert (await staff_client.get("/users?active=maybe")).status_code == 400


@pytest.mark.parametrize("sort", list(USER_SORTS))
@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_sort_and_keyset_pages_walk_every_row_once(
    staff_client: LoggedIn, conn, sort: str, direction: str
) -> None:
    await add_users(conn, 23)
    column = sort
    expected = [
        r["id"]
        for r in await conn.fetch(
            f'SELECT id FROM users ORDER BY "{column}" {direction}, id {direction}'
        )
    ]
    seen: list[int] = []
    url: str | None = f"/users?sort={sort}&dir={direction}&limit=5"
    pages = []
    while url:
        response = await staff_client.get(url)
        assert response.status_code == 200, response.text
        seen += row_ids(response.text)
        pages.append(url)
        url = link(response.text, "next")
    assert seen == expected
    # and backwards from the last page
    response = await staff_client.get(pages[-1])
    back: list[int] = row_ids(response.text)
    url = link(response.text, "prev")
    while url:
        response = await staff_client.get(url)
        back = row_ids(response.text) + back
        url = link(response.text, "prev")
    assert back == expected


async def test_keyset_is_stable_under_inserts(staff_client: LoggedIn, conn) -> None:
    await add_users(conn, 10)
    first = await staff_client.get("/users?limit=5")
    next_url = link(first.text, "next")
    assert next_url
    await conn.execute("INSERT INTO users (id, username, email) VALUES (0, 'zero', 'zero@x.io')")
    second = await staff_client.get(next_url)
    ids = await conn.fetch("SELECT id FROM users WHERE id > 0 ORDER BY id")
    assert row_ids(second.text) == [r["id"] for r in ids][5:10]


@pytest.mark.parametrize(
    "query",
    [
        "sort=password",
        "sort=id;DROP TABLE users",
        'sort="id"',
        "dir=sideways",
        "limit=0",
        "limit=501",
        "limit=abc",
        "limit=-5",
        "after=not-a-cursor",
        "after=" + "A" * 2000,
        "before=eyJ4IjoxfQ",
        "after=WyJpZCIsIjEgT1IgMT0xIiwxXQ",  # ["id","1 OR 1=1",1]
        "sort=email&after=WyJpZCIsMSwxXQ",  # a cursor of the id sort
        "after=WyJpZCIsMSwxXQ&before=WyJpZCIsMSwxXQ",
    ],
)
async def test_bad_list_parameters_are_400(staff_client: LoggedIn, conn, query: str) -> None:
    await add_users(conn, 3)
    response = await staff_client.get(f"/users?{query}")
    assert response.status_code == 400
    assert "flash-error" in response.text
    assert await conn.fetchval("SELECT count(*) FROM users") == 3


async def test_injection_in_search_is_data(staff_client: LoggedIn, conn) -> None:
    await add_users(conn, 3)
    for q in ["'; DROP TABLE users; --", "%' OR '1'='1", "\\", "x') OR true --"]:
        response = await staff_client.get("/users", params={"q": q})
        assert response.status_code == 200
        assert row_ids(response.text) == []
    assert await conn.fetchval("SELECT count(*) FROM users") == 3


async def test_cursor_round_trip_with_awkward_values(staff_client: LoggedIn, conn) -> None:
    await conn.execute(
        "INSERT INTO users (username, email, full_name) VALUES"
        " ('qq1', 'a\"b''c@x.io', 'O''Brien \"x\"'), ('qq2', 'b@x.io', 'Zed')"
    )
    cursor = make_cursor("full_name", 'O\'Brien "x"', [1])
    response = await staff_client.get(f"/users?sort=full_name&after={cursor}")
    assert row_ids(response.text) == [await user_id(conn, "qq2")]


async def test_total_is_exact_for_small_tables_and_count_endpoint(
    staff_client: LoggedIn, conn
) -> None:
    await add_users(conn, 12)
    response = await staff_client.get("/users?active=true")
    assert "8 users" in response.text
    count = await staff_client.get("/users/count?active=true", headers={"HX-Request": "true"})
    assert "8 exactly" in count.text


async def test_total_is_an_estimate_on_big_tables(staff_client: LoggedIn, conn) -> None:
    await add_users(conn, 12_000)
    await conn.execute("ANALYZE users")
    response = await staff_client.get("/users")
    assert "(estimate)" in response.text and "exact count" in response.text
    count = await staff_client.get("/users/count", headers={"HX-Request": "true"})
    assert "12,000 exactly" in count.text


async def test_anonymous_is_redirected(client) -> None:
    response = await client.get("/users")
    assert response.status_code in (302, 303, 307)
