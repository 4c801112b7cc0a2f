"""A list's state over HTTP: the swapped table carries sort and size, pages know where they
sit ("11-20 of 30"), the last page reads backwards, bulk actions come back to the same
page, and the confirm step names the records and what refers to them."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import asyncpg

from tests.conftest import LoggedIn
from tests.resource_helpers import row_ids

HX = {"HX-Request": "true"}


async def _users(conn: asyncpg.Connection, n: int = 30) -> list[int]:
    rows = await conn.fetch(
        """
        INSERT INTO users (username, email, full_name)
        SELECT 'user' || lpad(g::text, 3, '0'), 'u' || (100 - g) || '@example.com', 'P ' || g
        FROM generate_series(1, $1) AS g RETURNING id
        """,
        n,
    )
    return [r["id"] for r in rows]


def _link(text: str, rel: str) -> str:
    match = re.search(r'<a href="([^"]+)"[^>]*rel="' + rel + '"', text)
    assert match, f"no {rel} link"
    return html.unescape(match.group(1))


def _position(text: str) -> str:
    match = re.search(r'<p class="list-position[^"]*"[^>]*>(.*?)</p>', text, re.S)
    assert match
    text = " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())
    return text.replace("\u2013", "-")  # the en dash of "1-10"


async def test_the_swapped_table_carries_sort_for_the_search_form(
    staff_client: LoggedIn, conn
) -> None:
    await _users(conn, 5)
    fragment = await staff_client.get("/users?sort=email&dir=desc", headers=HX)
    assert '<form id="list-filters"' not in fragment.text  # a fragment, not the page
    assert '<input type="hidden" name="sort" value="email" form="list-filters">' in fragment.text
    assert '<input type="hidden" name="dir" value="desc" form="list-filters">' in fragment.text
    page = await staff_client.get("/users?sort=email&dir=desc&limit=25")
    # the search form itself holds no copy that a swap would leave behind
    form = page.text.split('<form id="list-filters"', 1)[1].split("</form>", 1)[0]
    assert 'name="sort"' not in form and 'name="limit"' not in form
    assert '<option value="25" selected>25</option>' in page.text


async def test_pages_say_where_they_are_and_the_last_page_reads_backwards(
    staff_client: LoggedIn, conn
) -> None:
    ids = await _users(conn, 30)
    first = await staff_client.get("/users?limit=10")
    assert _position(first.text) == "1-10 of 30 users"
    assert 'aria-disabled="true">Previous' in first.text
    second = await staff_client.get(_link(first.text, "next"))
    assert _position(second.text) == "11-20 of 30 users"
    assert row_ids(second.text) == ids[10:20]
    last = await staff_client.get("/users?limit=10&last=1")
    assert row_ids(last.text) == ids[20:]
    assert _position(last.text) == "21-30 of 30 users"
    assert 'aria-disabled="true">Next' in last.text and 'aria-disabled="true">Last' in last.text
    back = await staff_client.get(_link(last.text, "prev"))
    assert row_ids(back.text) == ids[10:20]
    assert _position(back.text) == "11-20 of 30 users"
    # sorted the other way, the last page is the lowest ids
    reverse = await staff_client.get("/users?limit=10&last=1&dir=desc")
    assert row_ids(reverse.text) == sorted(ids[:10], reverse=True)
    # two page links, above and below the table, each its own landmark
    assert first.text.count('rel="next"') == 2
    assert '<nav class="pagination" aria-label="Pages (top)">' in first.text
    assert '<nav class="pagination" aria-label="Pages">' in first.text


async def test_a_cursor_with_last_is_refused(staff_client: LoggedIn, conn) -> None:
    await _users(conn, 3)
    page = await staff_client.get("/users?last=1&after=abc")
    assert page.status_code == 400
    # a hand-edited position hint is dropped, never an error
    assert (await staff_client.get("/users?at=banana")).status_code == 200


async def test_bulk_with_nothing_selected_returns_to_the_same_list(
    staff_client: LoggedIn, conn
) -> None:
    await _users(conn, 3)
    state = {"q": "user", "sort": "email", "dir": "desc", "limit": "25"}
    done = await staff_client.post(
        "/users/bulk", {"action": "deactivate", "scope": "selected", "confirm": "yes", **state}
    )
    assert done.status_code == 303
    assert parse_qs(urlsplit(done.headers["location"]).query) == {k: [v] for k, v in state.items()}
    assert await conn.fetchval("SELECT count(*) FROM users WHERE NOT is_active") == 0
    page = await staff_client.get(done.headers["location"])
    assert "Nothing was changed: select at least one user" in page.text


async def test_a_bulk_action_comes_back_to_the_page_it_started_from(
    staff_client: LoggedIn, conn
) -> None:
    ids = await _users(conn, 30)
    first = await staff_client.get("/users?sort=username&limit=10")
    second_url = _link(first.text, "next")
    second = await staff_client.get(second_url)
    form = second.text.split('<form id="bulk-form"', 1)[1].split("</form>", 1)[0]
    carried = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    carried.pop("csrf_token")
    assert carried == {k: v[0] for k, v in parse_qs(urlsplit(second_url).query).items()}
    done = await staff_client.post(
        "/users/bulk",
        {"action": "deactivate", "scope": "selected", "ids": str(ids[12]), "confirm": "yes"}
        | {k: html.unescape(v) for k, v in carried.items()},
    )
    assert done.status_code == 303
    back = await staff_client.get(done.headers["location"])
    assert row_ids(back.text) == ids[10:20]
    assert _position(back.text) == "11-20 of 30 users"


async def test_the_confirm_step_names_records_and_what_refers_to_them(
    staff_client: LoggedIn, conn
) -> None:
    ids = await _users(conn, 25)
    await conn.execute(
        "INSERT INTO orders (user_id, total, status) SELECT unnest($1::bigint[]), 10, 'paid'",
        ids[:3],
    )
    confirm = await staff_client.post("/users/bulk", {"action": "delete", "scope": "all"})
    assert confirm.status_code == 200
    assert "Delete: 25 users?" in confirm.text
    assert confirm.text.count('<li><a href="/users/') == 20
    assert "user001" in confirm.text and "user020" in confirm.text
    assert "user021" not in confirm.text
    assert "and 5 more." in confirm.text
    assert "3 of them have orders: nothing is deleted while they do." in confirm.text
    assert re.search(r'class="danger" disabled>Delete: 25 users', confirm.text)
    assert "Deactivate instead" in confirm.text
    # the alternative goes to its own confirm step, for the same records
    alternative = await staff_client.post("/users/bulk", {"action": "deactivate", "scope": "all"})
    assert "Deactivate: 25 users?" in alternative.text
    assert "have orders" not in alternative.text
    # selected records without orders: no blocker, the delete is offered
    free = await staff_client.post(
        "/users/bulk", {"action": "delete", "scope": "selected", "ids": [str(i) for i in ids[5:7]]}
    )
    assert "have orders" not in free.text
    assert re.search(r'class="danger">Delete: 2 users', free.text)
    deleted = await staff_client.post(
        "/users/bulk",
        {"action": "delete", "scope": "selected", "ids": [str(i) for i in ids[5:7]]}
        | {"confirm": "yes"},
    )
    page = await staff_client.get(deleted.headers["location"])
    assert "Delete: 2 users changed." in page.text
    assert 'class="undo-bar"' not in page.text  # a delete is not undone from here


async def test_a_bulk_change_can_be_undone_and_undo_leaves_later_changes(
    staff_client: LoggedIn, admin_client: LoggedIn, conn
) -> None:
    ids = await _users(conn, 5)
    state = {"sort": "email", "dir": "asc", "limit": "25"}
    done = await staff_client.post(
        "/users/bulk",
        {"action": "deactivate", "scope": "all", "confirm": "yes", **state},
    )
    assert done.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM users WHERE is_active") == 0
    page = await staff_client.get(done.headers["location"])
    form = re.search(r'<form class="undo-bar".*?</form>', page.text, re.S)
    assert form and "Deactivate: 5 users." in form.group(0)
    batch = re.search(r'name="batch" value="([^"]+)"', form.group(0))
    assert batch
    # someone turns one back on meanwhile and another one off again: undo leaves it alone
    await conn.execute("UPDATE users SET full_name = 'Later' WHERE id = $1", ids[0])
    await conn.execute("UPDATE users SET is_active = true WHERE id = $1", ids[1])
    # another staff member cannot undo it
    other = await admin_client.post("/users/bulk/undo", {"batch": batch.group(1), **state})
    assert other.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM users WHERE is_active") == 1
    undone = await staff_client.post("/users/bulk/undo", {"batch": batch.group(1), **state})
    assert undone.status_code == 303
    assert parse_qs(urlsplit(undone.headers["location"]).query) == {
        k: [v] for k, v in state.items()
    }
    assert await conn.fetchval("SELECT count(*) FROM users WHERE is_active") == 5
    entries = await conn.fetch(
        "SELECT resource_id FROM audit_log WHERE action = 'undo_bulk_deactivate'"
    )
    assert sorted(int(e["resource_id"]) for e in entries) == sorted(ids[:1] + ids[2:])
    after = await staff_client.get(undone.headers["location"])
    assert "Undone: 4 users put back. 1 changed again since were left as they are." in after.text
    assert 'class="undo-bar"' not in after.text
    # a second undo of the same change finds nothing left to put back
    again = await staff_client.post("/users/bulk/undo", {"batch": batch.group(1)})
    assert again.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM users WHERE is_active") == 5
    assert (await staff_client.post("/users/bulk/undo", {"batch": "x-1"})).status_code == 400


async def test_an_order_status_change_is_undone_to_each_ones_own_status(
    staff_client: LoggedIn, conn
) -> None:
    [uid] = await _users(conn, 1)
    await conn.execute(
        "INSERT INTO orders (user_id, total, status) VALUES ($1, 1, 'pending'), ($1, 2, 'paid')",
        uid,
    )
    done = await staff_client.post(
        "/orders/bulk",
        {"action": "set_status", "value": "cancelled", "scope": "all", "confirm": "yes"},
    )
    page = await staff_client.get(done.headers["location"])
    batch = re.search(r'name="batch" value="([^"]+)"', page.text)
    assert batch and "Set status to cancelled: 2 orders." in page.text
    await staff_client.post("/orders/bulk/undo", {"batch": batch.group(1)})
    rows = await conn.fetch("SELECT status::text FROM orders ORDER BY total")
    assert [r["status"] for r in rows] == ["pending", "paid"]


async def test_one_record_is_counted_in_the_singular(staff_client, conn) -> None:
    await conn.execute(
        "INSERT INTO users (username, email, full_name) VALUES ('solo', 'solo@x.io', 'Solo')"
    )
    page = await staff_client.get("/users?q=solo")
    assert "1 user" in page.text and "1 users" not in page.text
