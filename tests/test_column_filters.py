"""Filters on any column (f.<column>.<op>): equals, contains, in list, ranges of numbers and
dates, is empty; combined with each other, the search and the sort; refused with a clear
message when a column or condition does not exist; the builder says which are indexed."""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlsplit

import asyncpg

from tests.conftest import LoggedIn
from tests.resource_helpers import row_ids

HX = {"HX-Request": "true"}


async def _seed(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch(
        """
        INSERT INTO users (username, email, full_name, created_at) VALUES
          ('ann', 'ann@smith.example', 'Ann Smith', '2024-01-10 12:00+00'),
          ('bob', 'bob@jones.example', '', '2024-02-10 12:00+00'),
          ('cyd', 'cyd@smith.example', 'Cy Smith', '2024-03-10 12:00+00'),
          ('dee', 'dee@lee.example', 'Dee Lee', '2024-04-10 12:00+00')
        RETURNING username, id
        """
    )
    ids = {r["username"]: r["id"] for r in rows}
    await conn.execute(
        """
        INSERT INTO orders (user_id, total, status) VALUES
          ($1, 5, 'pending'), ($1, 50, 'paid'), ($2, 500, 'shipped'), ($3, 75, 'paid')
        """,
        ids["ann"],
        ids["bob"],
        ids["cyd"],
    )
    return ids


async def test_column_filters_combine_with_search_and_sort(staff_client: LoggedIn, conn) -> None:
    ids = await _seed(conn)
    page = await staff_client.get("/users?f.email.contains=SMITH&sort=username&dir=desc")
    assert row_ids(page.text) == [ids["cyd"], ids["ann"]]
    assert "Email contains SMITH" in page.text
    page = await staff_client.get("/users?f.full_name.empty=1")
    assert row_ids(page.text) == [ids["bob"]]
    page = await staff_client.get("/users?f.full_name.empty=0&f.created_at.gte=2024-02-01")
    assert row_ids(page.text) == [ids["cyd"], ids["dee"]]
    page = await staff_client.get("/users?f.created_at.lte=2024-03-10&f.created_at.gte=2024-02-10")
    assert row_ids(page.text) == [ids["bob"], ids["cyd"]]
    page = await staff_client.get(f"/users?f.id.in={ids['ann']},{ids['dee']}&q=smith")
    assert row_ids(page.text) == [ids["ann"]]
    orders = await staff_client.get("/orders?f.status.in=paid,shipped&f.total.gte=60&sort=total")
    totals = [t for t in ("50.00", "75.00", "500.00") if t in orders.text]
    assert totals == ["75.00", "500.00"]
    # a removal link drops only its own filter
    assert 'aria-label="Remove the filter Status is one of paid, shipped"' in orders.text


async def test_a_filter_added_by_the_builder_is_pushed_in_one_spelling(
    staff_client: LoggedIn, conn
) -> None:
    ids = await _seed(conn)
    response = await staff_client.get(
        "/users?add_col=email&add_op=contains&add_val=smith&sort=email&active=&limit=50",
        headers=HX,
    )
    assert row_ids(response.text) == [ids["ann"], ids["cyd"]]
    pushed = urlsplit(response.headers["hx-push-url"])
    assert parse_qs(pushed.query) == {
        "f.email.contains": ["smith"],
        "sort": ["email"],
        "dir": ["asc"],
    }
    # the table carries the filter for the next search
    assert (
        '<input type="hidden" name="f.email.contains" value="smith" form="list-filters">'
        in response.text
    )


async def test_bad_column_filters_are_400_with_a_reason(staff_client: LoggedIn, conn) -> None:
    await _seed(conn)
    for query, reason in (
        ("f.nope.eq=1", "There is no column 'nope' to filter on."),
        ("f.email.gte=a", "Email can be filtered with: contains, equals, is one of, is empty."),
        ("f.total.gte=lots", "The total filter:"),
        ("f.created_at.gte=yesterday", "enter a date like 2024-05-31."),
        ("f.password_hash.eq=x", "no column"),
    ):
        path = "/orders" if "total" in query else "/users"
        page = await staff_client.get(f"{path}?{query}")
        assert page.status_code == 400, query
        assert reason in html.unescape(page.text), query


async def test_the_builder_lists_each_column_with_its_conditions_and_indexes(
    staff_client: LoggedIn, conn
) -> None:
    await _seed(conn)
    builder = await staff_client.get("/orders/filter-builder")
    assert builder.status_code == 200
    assert 'value="total" data-ops="eq in gte lte" data-cheap="eq in gte lte"' in builder.text
    assert 'data-input="date">Created · indexed' in builder.text
    assert (await staff_client.get("/orders/filter-builder?f.x.eq=1")).status_code == 400


async def test_the_column_chooser_picks_the_columns_shown(staff_client: LoggedIn, conn) -> None:
    ids = await _seed(conn)
    page = await staff_client.get("/users?cols=username,email&sort=email")
    header = page.text.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert ">Username</a>" in header and ">Email" in header and "Full name" not in header
    assert row_ids(page.text) == [ids["ann"], ids["bob"], ids["cyd"], ids["dee"]]
    row = page.text.split(f'<tr id="row-{ids["ann"]}"', 1)[1].split("</tr>", 1)[0]
    assert row.count("<td") == 4  # the box, username, email, actions
    assert "ann@smith.example" in row and "Ann Smith" not in row
    # the chooser's boxes win over the state they came with, and come back as cols
    chosen = await staff_client.get("/users?cols=username&show=email&show=full_name", headers=HX)
    assert parse_qs(urlsplit(chosen.headers["hx-push-url"]).query) == {"cols": ["email,full_name"]}
    # the usual columns drop the parameter
    usual = await staff_client.get("/users?cols=id,username,email,full_name,is_active,created_at")
    assert "cols=" not in usual.text.split('<div id="list-state"', 1)[1].split("</div>", 1)[0]
    chooser = await staff_client.get("/users/column-chooser?cols=username,email")
    assert 'value="email" checked' in chooser.text and 'value="full_name">' in chooser.text
    for bad in ("cols=password_hash", "cols=" + ",".join(["id"] * 3) + ",nope"):
        assert (await staff_client.get(f"/users?{bad}")).status_code == 400
