"""Combined sorts with a direction per column (`sort=status,-due`) and columns that may be NULL:
allowed where a btree index's key order (ASC/DESC, NULLS FIRST/LAST) matches read forwards or
backwards, or where the declaration names them; every page walked both ways holds each row
once, in PostgreSQL's order; stale or tampered cursors are a 400; a deep page starts the index
scan at the cursor."""

from __future__ import annotations

import asyncio
import base64
import html
import json
import re

import asyncpg
import pytest

from admin.declarations import DECLARATIONS
from admin.resources import cursors, reads
from admin.resources.query import ListQuery
from admin.resources.registry import Registry
from admin.resources.spec import Resource
from tests.conftest import LoggedIn
from tests.resource_helpers import row_ids

TASKS = """
CREATE TABLE tasks (id serial PRIMARY KEY, status text NOT NULL, due date,
                    priority integer NOT NULL, note text);
INSERT INTO tasks (status, due, priority, note)
SELECT (ARRAY['done', 'open', 'wait'])[1 + g % 3],
       CASE WHEN g % 4 = 0 THEN NULL ELSE date '2026-01-01' + g % 5 END,
       g % 4,
       CASE WHEN g % 2 = 0 THEN NULL ELSE 'n' || g % 3 END
FROM generate_series(1, 60) AS g;
CREATE INDEX tasks_status_due ON tasks (status, due DESC);
CREATE INDEX tasks_priority_due ON tasks (priority DESC, due);
CREATE INDEX tasks_due_status ON tasks (due, status DESC);
CREATE INDEX tasks_status_priority ON tasks (status, priority);
CREATE INDEX tasks_status_priority_down ON tasks (status, priority DESC);
-- NULLs first ascending is not PostgreSQL's default placement: no combined sort from it
CREATE INDEX tasks_note_priority ON tasks (note NULLS FIRST, priority);
"""
ALLOWED = ("due,-status", "priority,-due", "status,-due", "status,priority", "status,-priority")


def _order(spelled: str, direction: str) -> str:
    """The ORDER BY a sort stands for: `-` runs against `dir`, the key breaks ties with `dir`."""
    first_down = direction == "desc"
    parts = []
    for name in spelled.split(","):
        down = first_down != name.startswith("-")
        parts.append(f"{name.removeprefix('-')} {'DESC' if down else 'ASC'}")
    return ", ".join([*parts, f"id {'DESC' if first_down else 'ASC'}"])


def _link(text: str, rel: str) -> str | None:
    match = re.search(r'<a href="([^"]+)"[^>]*rel="' + rel + '"', text)
    return html.unescape(match.group(1)) if match else None


async def _walk(client: LoggedIn, url: str, rel: str) -> list[int]:
    seen: list[int] = []
    next_url: str | None = url
    for _ in range(40):
        if next_url is None:
            break
        page = await client.get(next_url)
        assert page.status_code == 200, page.text
        ids = row_ids(page.text)
        seen = seen + ids if rel == "next" else ids + seen
        next_url = _link(page.text, rel)
    return seen


def _raw_cursor(payload: object) -> str:
    text = json.dumps(payload, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def _expected(conn: asyncpg.Connection, table: str, spelled: str, direction: str) -> list:
    order = _order(spelled, direction)
    return [r["id"] for r in await conn.fetch(f"SELECT id FROM {table} ORDER BY {order}")]


@pytest.fixture
async def tasks(conn: asyncpg.Connection, admin_client: LoggedIn) -> None:
    await conn.execute(TASKS)
    assert (await admin_client.post("/tables/refresh")).status_code in (200, 303)


async def test_every_allowed_mixed_sort_pages_both_ways_in_postgres_order(
    tasks: None, admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    for spelled in ALLOWED:
        for direction in ("asc", "desc"):
            expected = await _expected(conn, "tasks", spelled, direction)
            url = f"/tasks?sort={spelled}&dir={direction}&limit=7"
            assert await _walk(admin_client, url, "next") == expected, (spelled, direction)
            assert await _walk(admin_client, url + "&last=1", "prev") == expected, (
                spelled,
                direction,
            )
    # a `-` before the first column turns the whole sort round
    turned = await admin_client.get("/tasks?sort=-status,due&limit=100")
    assert row_ids(turned.text) == await _expected(conn, "tasks", "status,-due", "desc")


async def test_refused_combinations_name_the_allowed_ones(
    tasks: None, admin_client: LoggedIn
) -> None:
    for bad in ("status,due", "priority,due", "due,status", "note,priority", "status,-note"):
        refused = await admin_client.get(f"/tasks?sort={bad}")
        assert refused.status_code == 400, bad
        message = html.unescape(refused.text)
        assert "these can be combined (an index supports them):" in message, bad
        for allowed in ALLOWED:
            assert re.search(rf"[:;] {re.escape(allowed)}[;.]", message), (bad, allowed)


async def test_headers_turn_the_sort_and_then_by_offers_both_directions(
    tasks: None, admin_client: LoggedIn
) -> None:
    page = await admin_client.get("/tasks?sort=status,-due&limit=7")
    head = page.text.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert "▲1" in head and "▼2" in head
    assert re.search(r'<th scope="col"[^>]*aria-sort="ascending">\s*<a[^>]*>Status', head)
    # the first column's header reads the same index backwards: every direction flipped
    assert "sort=status%2C-due&amp;dir=desc" in head
    turned = await admin_client.get("/tasks?sort=status,-due&dir=desc&limit=7")
    head = turned.text.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert "▼1" in head and "▲2" in head

    links = re.findall(
        r'<a class="then-by"[^>]*href="([^"]+)"[^>]*aria-label="([^"]+)"',
        (await admin_client.get("/tasks?sort=status")).text,
    )
    offered = {label: html.unescape(href) for href, label in links}
    assert offered == {
        "Sort by Status, then by Due descending": "/tasks?sort=status%2C-due&dir=asc",
        "Sort by Status, then by Priority ascending": "/tasks?sort=status%2Cpriority&dir=asc",
        "Sort by Status, then by Priority descending": "/tasks?sort=status%2C-priority&dir=asc",
    }
    down = re.findall(
        r'<a class="then-by"[^>]*href="([^"]+)"[^>]*aria-label="([^"]+)"',
        (await admin_client.get("/tasks?sort=status&dir=desc")).text,
    )
    assert {label for _, label in down} == {
        "Sort by Status, then by Due ascending",
        "Sort by Status, then by Priority ascending",
        "Sort by Status, then by Priority descending",
    }


async def test_stale_and_tampered_cursors_are_refused(tasks: None, admin_client: LoggedIn) -> None:
    base = "/tasks?sort=status,-due&limit=7"
    other = _raw_cursor(["status,due", ["open", "2026-01-02"], ["1"]])
    for param in ("after", "before"):
        stale = await admin_client.get(f"{base}&{param}={other}")
        assert stale.status_code == 400 and "another sort order" in stale.text
    tampered = [
        "not-a-cursor!!",
        _raw_cursor(["status,-due", [None, "2026-01-02"], ["1"]]),  # status is NOT NULL
        _raw_cursor(["status,-due", ["open", "not a date"], ["1"]]),
        _raw_cursor(["status,-due", ["open"], ["1"]]),
        _raw_cursor(["status,-due", "open", ["1"]]),
        _raw_cursor(["status,-due", ["open", 5], ["1"]]),
        _raw_cursor(["status,-due", ["open", "2026-01-02"], [None]]),
        _raw_cursor(["status,-due", ["open", "2026-01-02"], ["x"]]),
        _raw_cursor(["status,-due", ["open", "2026-01-02"]]),
    ]
    for raw in tampered:
        for param in ("after", "before"):
            refused = await admin_client.get(f"{base}&{param}={raw}")
            assert refused.status_code == 400, (raw, refused.text)
            assert "The page cursor is not valid" in refused.text, raw
    # a NULL where the column allows one is a position like any other
    at_null = _raw_cursor(["status,-due", ["open", None], ["4"]])
    assert (await admin_client.get(f"{base}&after={at_null}")).status_code == 200
    assert (await admin_client.get(f"{base}&before={at_null}")).status_code == 200


DECLARED_TASKS = Resource(
    table="tasks",
    plural="tasks",
    # no index covers these: allowed because they are declared
    sort_combinations=(("priority", "-status"), ("-note", "status")),
)


async def test_declared_combinations_without_an_index_are_offered_and_page(
    app, conn: asyncpg.Connection, admin_client: LoggedIn
) -> None:  # type: ignore[no-untyped-def]
    await conn.execute(TASKS)
    await conn.execute("DROP INDEX tasks_note_priority")
    declarations = [*DECLARATIONS, DECLARED_TASKS]
    app.state.registry = Registry(("public",), declarations=declarations, check_seconds=0)
    by_priority = await admin_client.get("/tasks?sort=priority")
    assert by_priority.status_code == 200, by_priority.text
    assert 'aria-label="Sort by Priority, then by Status descending"' in by_priority.text
    # "-note,status" is spelled with the first column unsigned: note descending, status
    # ascending is "note,-status" read descending
    for spelled, direction in (
        ("priority,-status", "asc"),
        ("priority,-status", "desc"),
        ("note,-status", "asc"),
        ("note,-status", "desc"),
    ):
        expected = await _expected(conn, "tasks", spelled, direction)
        url = f"/tasks?sort={spelled}&dir={direction}&limit=6"
        assert await _walk(admin_client, url, "next") == expected, (spelled, direction)
        assert await _walk(admin_client, url + "&last=1", "prev") == expected
    for undeclared in ("priority,status", "status,note", "note,status"):
        refused = await admin_client.get(f"/tasks?sort={undeclared}")
        assert refused.status_code == 400, undeclared
        assert "priority,-status" in html.unescape(refused.text)


LEDGER = """
CREATE TABLE ledger (id serial PRIMARY KEY, status text NOT NULL, due date,
                     amount integer NOT NULL);
INSERT INTO ledger (status, due, amount)
SELECT 's' || g % 20, CASE WHEN g % 10 = 0 THEN NULL ELSE date '2026-01-01' + g % 300 END, g
FROM generate_series(1, 4000) AS g;
CREATE INDEX ledger_status_due ON ledger (status, due DESC);
ANALYZE ledger;
"""


def _nodes(plan: dict) -> list[dict]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


async def test_a_deep_page_of_a_mixed_sort_starts_the_index_scan_at_the_cursor(
    app, conn: asyncpg.Connection, admin_client: LoggedIn
) -> None:  # type: ignore[no-untyped-def]
    await conn.execute(LEDGER)
    assert (await admin_client.post("/tables/refresh")).status_code in (200, 303)
    assert (await admin_client.get("/ledger?sort=status,-due")).status_code == 200
    table = app.state.registry.get("ledger")
    for direction, param in (("asc", "after"), ("desc", "after"), ("asc", "before")):
        order = _order("status,-due", direction)
        deep = await conn.fetchrow(f"SELECT * FROM ledger ORDER BY {order} OFFSET 3000 LIMIT 1")
        sort = ListQuery.from_params(table, {"sort": "status,-due", "dir": direction}).sort_keys
        raw = cursors.encode(table, sort, deep)
        query = ListQuery.from_params(table, {"sort": "status,-due", "dir": direction, param: raw})
        ran: list[tuple[str, tuple]] = []

        def log(record: asyncpg.connection.LoggedQuery, ran: list = ran) -> None:
            ran.append((record.query, record.args))

        conn.add_query_logger(log)
        try:
            await reads.fetch_page(conn, query, table.list_select)
            await asyncio.sleep(0)  # loggers are called soon after, not during
        finally:
            conn.remove_query_logger(log)
        sql, args = next((q, a) for q, a in ran if "FROM" in q and "ledger" in q)
        raw_plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        plan = json.loads(raw_plan) if isinstance(raw_plan, str) else raw_plan
        nodes = _nodes(plan[0]["Plan"])
        kinds = {n["Node Type"] for n in nodes}
        assert "Seq Scan" not in kinds, (direction, param, kinds)
        scans = [n for n in nodes if n["Node Type"] in ("Index Scan", "Index Only Scan")]
        assert [n["Index Name"] for n in scans] == ["ledger_status_due"], nodes
        assert "status" in scans[0].get("Index Cond", ""), scans[0]
