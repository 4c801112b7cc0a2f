"""Saved views: a list state saved under a name, per staff member or shared, listed for the
list; checked and stored in the list's own spelling; only its owner removes it (and an admin
a shared one)."""

from __future__ import annotations

import html
import re

from tests.conftest import LoggedIn


async def test_views_are_saved_listed_shared_and_removed(
    staff_client: LoggedIn, admin_client: LoggedIn, conn
) -> None:
    saved = await staff_client.post(
        "/users/views",
        {"name": "  Active  smiths ", "query": "q=smith&active=true&sort=email&after=xyz&limit=50"},
    )
    assert saved.status_code == 303
    # the list's spelling: no cursor, no default page size
    assert saved.headers["location"] == "/users?q=smith&active=true&sort=email&dir=asc"
    own = await staff_client.get("/users/views")
    assert '<a href="/users?q=smith&amp;active=true&amp;sort=email&amp;dir=asc"' in own.text
    assert "Active smiths" in own.text
    # private: another staff member does not see it
    assert "Active smiths" not in (await admin_client.get("/users/views")).text
    await staff_client.post("/users/views", {"name": "Late orders", "query": "", "shared": "1"})
    other = await admin_client.get("/users/views")
    assert "Late orders" in other.text and "shared by clerk" in other.text
    assert "Remove the view Late orders" in other.text  # an admin removes any shared view
    # saving again under the same name replaces the state
    await staff_client.post("/users/views", {"name": "Active smiths", "query": "q=jones"})
    assert await conn.fetchval("SELECT query FROM saved_views WHERE name = 'Active smiths'") == (
        "q=jones"
    )
    private_id = await conn.fetchval("SELECT id FROM saved_views WHERE name = 'Active smiths'")
    refused = await admin_client.post(f"/users/views/{private_id}/delete")
    assert refused.status_code == 404  # not theirs, and not shared
    view_id = await conn.fetchval("SELECT id FROM saved_views WHERE name = 'Late orders'")
    removed = await staff_client.post(f"/users/views/{view_id}/delete")
    assert removed.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM saved_views") == 1
    # views belong to their list
    assert "Active smiths" not in (await staff_client.get("/orders/views")).text


async def test_a_state_the_list_would_refuse_is_not_saved(staff_client: LoggedIn, conn) -> None:
    for data, reason in (
        ({"name": "x", "query": "sort=password"}, "Cannot sort by 'password'"),
        ({"name": "x", "query": "f.nope.eq=1"}, "no column 'nope'"),
        ({"name": " ", "query": ""}, "Give the view a name"),
        ({"name": "n" * 81, "query": ""}, "Give the view a name"),
        ({"name": "x", "query": "q=" + "a" * 4000}, "at most 4,000 characters"),
    ):
        response = await staff_client.post("/users/views", data)
        assert response.status_code == 422, data
        assert reason in html.unescape(response.text), data
    assert await conn.fetchval("SELECT count(*) FROM saved_views") == 0
    assert (await staff_client.post("/users/views/abc/delete")).status_code == 404


async def test_the_list_page_loads_its_views_after_itself(staff_client: LoggedIn) -> None:
    page = await staff_client.get("/users")
    assert re.search(
        r'<nav class="saved-views"[^>]*hx-get="/users/views" hx-trigger="load"', page.text
    )
