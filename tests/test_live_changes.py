"""GET /live/changes against a real uvicorn: capture from every writer, permissions for
every resource, exactly-once resume, listener kills and database restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from admin.resources import catalog
from admin.resources.registry import INTERNAL_TABLES
from admin.sql import quote_ident
from tests.conftest import TEST_SECRET_KEY, create_staff, log_in
from tests.live import LiveServer, live_server
from tests.live_helpers import add_customer, capture_ready, logged_in_client
from tests.sse_client import Follower

LISTENERS = ["pg-admin-panel-listener", "pg-admin-panel-changes"]


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(database_url, TEST_SECRET_KEY, tmp_path) as running:
        yield running


@pytest.fixture
async def db(database_url: str):  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


def follower(http: httpx.AsyncClient, query: str = "") -> Follower:
    return Follower(http, query=query, path="/live/changes", event="change")


async def admin_client(server: LiveServer, db: asyncpg.Connection) -> httpx.AsyncClient:
    await create_staff(db, "boss", "admin")
    http = httpx.AsyncClient(base_url=server.url, timeout=10.0)
    await log_in(http, "boss")
    return http


async def change_ids(
    db: asyncpg.Connection, tables: list[str] | None = None, after: int = 0
) -> list[int]:
    rows = await db.fetch(
        "SELECT id FROM resource_changes WHERE ($1::text[] IS NULL OR table_name = any($1))"
        " AND id > $2 ORDER BY id",
        tables,
        after,
    )
    return [row["id"] for row in rows]


async def wait_for(f: Follower, expected: list[int]) -> None:
    await f.wait_for(expected)
    await asyncio.sleep(0.3)  # anything extra would arrive now


async def seed_shop(db: asyncpg.Connection) -> None:
    customer = await add_customer(db)
    category = await db.fetchval("INSERT INTO categories (name) VALUES ('Tea') RETURNING id")
    product = await db.fetchval(
        "INSERT INTO products (sku, name, price, category_id)"
        " VALUES ('T-1', 'Green', 3.50, $1) RETURNING id",
        category,
    )
    order = await db.fetchval(
        "INSERT INTO orders (user_id, total) VALUES ($1, 3.50) RETURNING id", customer
    )
    await db.execute(
        "INSERT INTO order_items (order_id, product_id, quantity, unit_price)"
        " VALUES ($1, $2, 1, 3.50)",
        order,
        product,
    )
    await db.execute("CREATE TABLE secret_notes (id int PRIMARY KEY, body text)")
    await db.execute("INSERT INTO secret_notes VALUES (7, 'payroll')")


async def test_every_writer_is_captured_row_by_row_and_large_statements_are_summarised(
    server: LiveServer, database_url: str, db: asyncpg.Connection
):
    http = await admin_client(server, db)
    await db.execute("CREATE TABLE gadgets (code text PRIMARY KEY, n int)")
    await http.post("/tables/refresh", data={"csrf_token": await _csrf(http)})
    f = follower(http)
    f.start()
    await f.wait_open()
    await db.execute("INSERT INTO gadgets VALUES ('a,b', 1), ('c', 2)")  # psql-like
    await db.copy_records_to_table("gadgets", records=[("d", 3)])  # COPY
    await db.execute("UPDATE gadgets SET n = n + 1 WHERE code = 'c'")
    await db.execute("DELETE FROM gadgets WHERE code = 'd'")
    await db.execute("INSERT INTO gadgets SELECT 'g' || g, g FROM generate_series(1, 150) g")
    await db.execute("SET admin.live_row_limit = 1000")
    await db.execute("UPDATE gadgets SET n = 0 WHERE code LIKE 'g1%'")  # 62 rows, row by row
    expected = await change_ids(db, ["gadgets"])
    await wait_for(f, expected)
    await f.disconnect()
    assert f.ids == expected
    got = [json.loads(d) for d in f.data]
    assert [(g["op"], g["key"], g["rows"]) for g in got[:5]] == [
        ("insert", "a~2Cb", 1),
        ("insert", "c", 1),
        ("insert", "d", 1),
        ("update", "c", 1),
        ("delete", "d", 1),
    ]
    assert (got[5]["op"], got[5]["key"], got[5]["rows"]) == ("insert", None, 150)
    assert len(got) == 6 + 62 and all(g["op"] == "update" and g["key"] for g in got[6:])
    assert {g["table"] for g in got} == {"gadgets"}
    assert got[0]["by"] == "postgres" or got[0]["by"]
    await http.aclose()


async def _csrf(http: httpx.AsyncClient) -> str:
    from tests.conftest import csrf_from

    return csrf_from((await http.get("/")).text)


async def test_a_table_staff_may_not_view_never_reaches_them_for_every_resource(
    server: LiveServer, database_url: str, db: asyncpg.Connection
):
    await seed_shop(db)
    boss = await admin_client(server, db)
    await boss.post("/tables/refresh", data={"csrf_token": await _csrf(boss)})
    staff = await logged_in_client(server.url, database_url, "clerk")
    watchers = {"staff": follower(staff), "admin": follower(boss)}
    for watcher in watchers.values():
        watcher.start()
        await watcher.wait_open()
    # the seeding may be captured already (the server installs capture as it starts)
    base = await db.fetchval("SELECT coalesce(max(id), 0) FROM resource_changes")
    infos = await catalog.read_tables(db, ["public"])
    resources = [
        i for i in infos if i.relkind == "r" and i.primary_key and i.name not in INTERNAL_TABLES
    ]
    assert {"users", "orders", "products", "categories", "order_items", "secret_notes"} <= {
        i.name for i in resources
    }
    for info in resources:  # one keyed change in every table
        column = quote_ident(info.primary_key[0])
        await db.execute(f"UPDATE {quote_ident(info.name)} SET {column} = {column}")
    everything = await change_ids(db, after=base)
    await wait_for(watchers["admin"], everything)
    viewable = {"users", "orders", "products", "categories", "order_items"}
    await wait_for(watchers["staff"], await change_ids(db, sorted(viewable), base))
    for watcher in watchers.values():
        await watcher.disconnect()
    assert watchers["admin"].ids == everything
    seen_by_admin = {json.loads(d)["table"] for d in watchers["admin"].data}
    assert seen_by_admin == {i.name for i in resources}
    for info in resources:
        table_seen = {json.loads(d)["table"] for d in watchers["staff"].data}
        assert (info.name in table_seen) == (info.name in viewable), info.name
    assert watchers["staff"].ids == await change_ids(db, sorted(viewable), base)
    assert all("secret_notes" not in d and "payroll" not in d for d in watchers["staff"].data)
    # asking for it outright is refused, and so is a table that does not exist
    refused = await staff.get("/live/changes?tables=secret_notes")
    assert refused.status_code == 403
    assert (await staff.get("/live/changes?tables=nope")).status_code == 404
    # a resume replays from the table with the same filter
    late = follower(staff)
    late.after = 0
    late.start()
    await wait_for(late, await change_ids(db, sorted(viewable)))
    await late.disconnect()
    assert late.ids == await change_ids(db, sorted(viewable))
    await staff.aclose()
    await boss.aclose()


async def test_narrowed_stream_and_resume_get_exactly_the_rest(
    server: LiveServer, database_url: str, db: asyncpg.Connection
):
    http = await logged_in_client(server.url, database_url, "watcher")
    await capture_ready(db, ("users", "categories"))
    customer = await add_customer(db)
    f = follower(http, "?tables=users")
    f.start()
    await f.wait_open()
    for n in range(3):
        await db.execute("UPDATE users SET full_name = $1 WHERE id = $2", f"n{n}", customer)
        await db.execute("INSERT INTO categories (name) VALUES ($1)", f"c{n}")
    await f.wait_for(await change_ids(db, ["users"]))
    await f.disconnect()
    for n in range(3, 6):  # while it is away
        await db.execute("UPDATE users SET full_name = $1 WHERE id = $2", f"n{n}", customer)
    f.start()
    await wait_for(f, await change_ids(db, ["users"]))
    await f.disconnect()
    assert f.ids == await change_ids(db, ["users"])
    assert len(f.ids) == 7  # the insert and six updates
    await http.aclose()


async def listener_pids(conn: asyncpg.Connection) -> list[int]:
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = any($1)"
        " AND datname = current_database()",
        LISTENERS,
    )
    return [row["pid"] for row in rows]


async def test_killed_listeners_and_concurrent_writers_lose_nothing(
    server: LiveServer, database_url: str, db: asyncpg.Connection
):
    http = await logged_in_client(server.url, database_url, "watcher")
    await capture_ready(db, ("users", "categories"))
    customer = await add_customer(db)
    followers = [follower(http) for _ in range(3)]
    for f in followers:
        f.start()
        await f.wait_open()

    async def writer(seed: int) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            for n in range(30):
                async with conn.transaction():
                    await conn.execute("INSERT INTO categories (name) VALUES ($1)", f"w{seed}-{n}")
                    await asyncio.sleep(0.02 * (n % 3))
                    await conn.execute(
                        "UPDATE users SET full_name = $1 WHERE id = $2", f"{seed}{n}", customer
                    )
        finally:
            await conn.close()

    writers = [asyncio.create_task(writer(seed)) for seed in range(3)]
    for _ in range(2):
        await asyncio.sleep(0.3)
        for pid in await listener_pids(db):
            await db.execute("SELECT pg_terminate_backend($1)", pid)
        await followers[0].resume()
    await asyncio.gather(*writers)
    everything = await change_ids(db)
    writes = everything[1:]  # the customer may have come before the streams opened
    assert len(writes) == 3 * 30 * 2
    for f in followers:
        await wait_for(f, writes)
        await f.disconnect()
        assert f.ids in (everything, writes)
    await http.aclose()


async def test_a_changed_primary_key_is_reported_under_the_old_key_as_deleted(
    server: LiveServer, database_url: str, db: asyncpg.Connection
):
    http = await admin_client(server, db)
    await db.execute("CREATE TABLE gadgets (code text PRIMARY KEY, n int)")
    await db.execute("CREATE TABLE pairs (a int, b int, n int, PRIMARY KEY (a, b))")
    await db.execute("INSERT INTO gadgets VALUES ('c', 1), ('d', 2)")
    await db.execute("INSERT INTO pairs VALUES (1, 1, 0), (1, 2, 0)")
    await http.post("/tables/refresh", data={"csrf_token": await _csrf(http)})
    f = follower(http, "?tables=gadgets,pairs")
    f.start()
    await f.wait_open()
    await db.execute("UPDATE gadgets SET code = 'z' WHERE code = 'c'")
    await db.execute("UPDATE gadgets SET code = code, n = 5")  # keys named, none changed
    await db.execute("UPDATE pairs SET b = b + 10 WHERE b = 2")
    await db.execute("UPDATE pairs SET n = 1")  # no key column named
    expected = await change_ids(db, ["gadgets", "pairs"])
    await wait_for(f, expected)
    await f.disconnect()
    got = [(g["table"], g["op"], g["key"]) for g in map(json.loads, f.data)]
    assert got == [
        ("gadgets", "delete", "c"),
        ("gadgets", "update", "z"),
        ("gadgets", "update", "d"),
        ("gadgets", "update", "z"),
        ("pairs", "delete", "1,2"),
        ("pairs", "update", "1,12"),
        ("pairs", "update", "1,1"),
        ("pairs", "update", "1,12"),
    ]
    await http.aclose()


async def test_old_changes_are_purged_and_a_resume_from_before_them_reloads(
    server: LiveServer, database_url: str, db: asyncpg.Connection
):
    from admin.live import changes

    http = await logged_in_client(server.url, database_url, "watcher")
    await capture_ready(db, ("users", "categories"))
    customer = await add_customer(db)
    probe = follower(http)
    probe.start()
    await probe.wait_open()
    for n in range(3):
        await db.execute("UPDATE users SET full_name = $1 WHERE id = $2", f"n{n}", customer)
    ids = await change_ids(db)
    # a purge touches rows long released; these are fresh: their release is waited for
    await wait_for(probe, ids[1:])
    await probe.disconnect()
    # the first two are three days old: past the 48 h kept by default
    await db.execute(
        "UPDATE resource_changes SET created_at = now() - interval '3 days' WHERE id = any($1)",
        ids[:2],
    )
    assert await changes.purge(db, keep_hours=48) == 2
    assert await change_ids(db) == ids[2:]
    assert await changes.purge(db, keep_hours=48) == 0
    # a browser that saw only the first change cannot be replayed the second: it reloads
    behind = follower(http)
    behind.after = ids[0]
    behind.start()
    await behind.wait_open()
    await asyncio.sleep(0.3)
    await behind.disconnect()
    assert behind.reloads == 1 and behind.ids == []
    # one that saw the second gets the rest
    current = follower(http)
    current.after = ids[1]
    current.start()
    await wait_for(current, ids[2:])
    await current.disconnect()
    assert current.reloads == 0 and current.ids == ids[2:]
    await http.aclose()


async def test_a_dropped_tables_capture_function_goes_at_the_next_catalog_read(
    server: LiveServer, database_url: str, db: asyncpg.Connection
):
    http = await admin_client(server, db)
    await db.execute("CREATE TABLE gadgets (code text PRIMARY KEY)")
    await http.post("/tables/refresh", data={"csrf_token": await _csrf(http)})
    oid = await db.fetchval("SELECT 'gadgets'::regclass::oid")
    name = f"admin_live_capture_{oid}"
    assert await db.fetchval("SELECT count(*) FROM pg_proc WHERE proname = $1", name) == 1
    await db.execute("DROP TABLE gadgets")
    await http.post("/tables/refresh", data={"csrf_token": await _csrf(http)})
    assert await db.fetchval("SELECT count(*) FROM pg_proc WHERE proname = $1", name) == 0
    # the others stay
    users = await db.fetchval("SELECT 'users'::regclass::oid")
    assert await db.fetchval(
        "SELECT count(*) FROM pg_proc WHERE proname = $1", f"admin_live_capture_{users}"
    )
    await http.aclose()
