"""Tables the panel has never seen: awkward names, another schema, composite keys, no key,
views, tables created or altered while the panel runs. Introspected tables are for admins."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from urllib.parse import quote

import pytest

from admin.resources import catalog, keys
from admin.resources.registry import Registry
from tests.browser_forms import audit_entries, form_dict, links, table_digest
from tests.conftest import LoggedIn

FOREIGN = '''
CREATE SCHEMA shop2;
CREATE TABLE "Customer Notes" ("ID" serial PRIMARY KEY, "Note Text" text NOT NULL,
                               "user" text, "order" integer);
CREATE TABLE "order" ("select" serial PRIMARY KEY, "user" text NOT NULL, "from" text);
CREATE TABLE "user" ("id" integer PRIMARY KEY, "group" text NOT NULL);
CREATE TABLE "café" (id serial PRIMARY KEY, "prix €" numeric(10, 2) NOT NULL);
CREATE TABLE "say ""hi""" (id serial PRIMARY KEY, "it's ""quoted""" text NOT NULL);
CREATE TABLE "<b>bold</b>" (id serial PRIMARY KEY, "<i>x</i>" text NOT NULL);
CREATE TABLE shop2.widgets (id serial PRIMARY KEY, name text UNIQUE NOT NULL);
'''

# (schema, table, key column, a required text or number column, its URL)
TABLES = [
    ("public", "Customer Notes", "ID", "Note Text", "/Customer~20Notes"),
    ("public", "order", "select", "user", "/order"),
    ("public", "user", "id", "group", "/user"),
    ("public", "café", "id", "prix €", "/caf~C3~A9"),
    ("public", 'say "hi"', "id", 'it\'s "quoted"', "/say~20~22hi~22"),
    ("public", "<b>bold</b>", "id", "<i>x</i>", "/~3Cb~3Ebold~3C~2Fb~3E"),
    ("shop2", "widgets", "id", "name", "/shop2.widgets"),
]


def qualified(schema: str, name: str) -> str:
    return '"{}"."{}"'.format(schema, name.replace('"', '""'))


def ident(name: str) -> str:
    return '"{}"'.format(name.replace('"', '""'))


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, admin_schemas=("public", "shop2"), catalog_check_s=0.0)


@pytest.fixture
async def foreign(conn) -> None:  # type: ignore[no-untyped-def]
    await conn.execute(FOREIGN)


@pytest.mark.parametrize(("schema", "name", "key", "column", "url"), TABLES)
async def test_an_awkward_name_gets_a_whole_admin(
    foreign, admin_client: LoggedIn, conn, schema, name, key, column, url
) -> None:
    home = await admin_client.get("/")
    assert "More tables" in home.text
    assert url in links(home.text)
    assert "<b>bold</b>" not in home.text and "<i>x</i>" not in home.text

    listing = await admin_client.get(url)
    assert listing.status_code == 200, listing.text
    assert f'href="{url}/new"' in listing.text
    assert "<b>bold" not in listing.text and "<i>x" not in listing.text
    body_class = re.search(r'<body class="([^"]*)"', listing.text)
    assert body_class and re.fullmatch(r"[\w~ .-]+", body_class.group(1))

    new = await admin_client.get(url + "/new")
    assert new.status_code == 200
    data = form_dict(new.text)
    assert set(data) >= {"csrf_token", column}
    value = "12.50" if name == "café" else "<script>alert('x')</script> ünï"
    data[column] = value
    if name == "user":
        data["id"] = "7"
    created = await admin_client.http.post(url, data=data)
    assert created.status_code == 303, created.text
    table = qualified(schema, name)
    row = await conn.fetchrow(f"SELECT * FROM {table}")
    assert created.headers["location"] == f"{url}/{row[key]}"
    assert str(row[column]) == value
    (entry,) = await audit_entries(conn, url[1:], "create")
    assert entry["resource_id"] == str(row[key])

    shown = await admin_client.get(f"{url}/{row[key]}")
    assert shown.status_code == 200
    assert "<script>alert" not in shown.text
    assert ("&lt;script&gt;" in shown.text) or name == "café"

    edit = await admin_client.get(f"{url}/{row[key]}/edit")
    data = form_dict(edit.text)
    data[column] = "99.01" if name == "café" else "changed"
    saved = await admin_client.http.post(f"{url}/{row[key]}", data=data)
    assert saved.status_code == 303, saved.text
    assert str(await conn.fetchval(f"SELECT {ident(column)} FROM {table}")) == data[column]

    confirm = await admin_client.get(f"{url}/{row[key]}/delete")
    deleted = await admin_client.http.post(
        f"{url}/{row[key]}/delete", data=form_dict(confirm.text, None)
    )
    assert deleted.status_code == 303, deleted.text
    assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0
    actions = [e["action"] for e in await audit_entries(conn, url[1:])]
    assert actions == ["create", "update", "delete"]


async def test_reserved_words_as_columns_are_listed_and_searched(
    foreign, admin_client: LoggedIn, conn
) -> None:
    await conn.execute(
        """INSERT INTO "Customer Notes" ("Note Text", "user", "order")
           VALUES ('first', 'ann', 3), ('second', 'bob', 4)"""
    )
    found = await admin_client.get("/Customer~20Notes?q=bob")
    assert found.status_code == 200
    assert "second" in found.text and "first" not in found.text
    for sort in ("ID",):
        page = await admin_client.get(f"/Customer~20Notes?sort={quote(sort)}&dir=desc")
        assert page.status_code == 200
        assert page.text.index("second") < page.text.index("first")


# ---- composite keys

AWKWARD_KEYS = [
    ("a,b/c", "50% off"),
    (" spaced ", "x~y,z/"),
    ("日本", "%2F and ~7E"),
    ("plain", ""),
]


async def test_a_composite_key_round_trips_through_urls(foreign, admin_client, conn) -> None:
    await conn.execute(
        "CREATE TABLE pairs (region text, code text, n integer NOT NULL,"
        " PRIMARY KEY (region, code))"
    )
    for i, (region, code) in enumerate(AWKWARD_KEYS):
        await conn.execute("INSERT INTO pairs VALUES ($1, $2, $3)", region, code, i)
    listing = await admin_client.get("/pairs")
    assert listing.status_code == 200
    hrefs = [h for h in links(listing.text) if h.startswith("/pairs/") and h.count("/") == 2]
    for i, (region, code) in enumerate(AWKWARD_KEYS):
        segment = keys.encode([region, code])
        assert f"/pairs/{segment}" in hrefs
        shown = await admin_client.get(f"/pairs/{segment}")
        assert shown.status_code == 200
        assert re.search(rf"<dt>N</dt><dd>{i}</dd>", shown.text)
        edit = await admin_client.get(f"/pairs/{segment}/edit")
        data = form_dict(edit.text)
        data["n"] = str(100 + i)
        saved = await admin_client.http.post(f"/pairs/{segment}", data=data)
        assert saved.status_code == 303, saved.text
        assert saved.headers["location"] == f"/pairs/{segment}"
        stored = await conn.fetchval(
            "SELECT n FROM pairs WHERE region = $1 AND code = $2", region, code
        )
        assert stored == 100 + i
    assert await conn.fetchval("SELECT sum(n) FROM pairs") == sum(100 + i for i in range(4))
    ids = [e["resource_id"] for e in await audit_entries(conn, "pairs", "update")]
    assert ids == [keys.encode(k) for k in AWKWARD_KEYS]
    segment = keys.encode(list(AWKWARD_KEYS[1]))
    confirm = await admin_client.get(f"/pairs/{segment}/delete")
    gone = await admin_client.http.post(
        f"/pairs/{segment}/delete", data=form_dict(confirm.text, None)
    )
    assert gone.status_code == 303
    left = await conn.fetch("SELECT region, code FROM pairs ORDER BY n")
    assert [tuple(r) for r in left] == [AWKWARD_KEYS[0], AWKWARD_KEYS[2], AWKWARD_KEYS[3]]
    for bad in ("only-one-part", "a,b,c", "~ZZ,x", "~FF,x"):
        assert (await admin_client.get(f"/pairs/{bad}")).status_code == 400


# ---- read-only tables


async def test_a_table_without_a_primary_key_is_read_only(foreign, admin_client, conn) -> None:
    await conn.execute(
        "CREATE TABLE readings (at integer, reading double precision);"
        "INSERT INTO readings SELECT g, g / 3.0 FROM generate_series(1, 10050) g"
    )
    before = await table_digest(conn, "readings")
    page = await admin_client.get("/readings")
    assert page.status_code == 200
    assert "has no primary key: it is listed read-only" in page.text
    assert "/readings/new" not in page.text and "row-actions" not in page.text
    assert 'rel="next"' in page.text
    deep = await admin_client.get("/readings?offset=9950")
    assert deep.status_code == 200
    assert 'rel="next"' not in deep.text
    assert "The list stops here" in deep.text
    assert (await admin_client.get("/readings?offset=10001")).status_code == 400
    assert (await admin_client.get("/readings?sort=at")).status_code == 400
    assert (await admin_client.get("/readings/new")).status_code == 403
    for url in ("/readings", "/readings/bulk", "/readings/1", "/readings/1/delete"):
        refused = await admin_client.post(url, {"at": "1", "ids": "1", "action": "delete"})
        assert refused.status_code == 403, url
    assert await table_digest(conn, "readings") == before
    assert await audit_entries(conn, "readings") == []


@pytest.mark.parametrize("kind", ["VIEW", "MATERIALIZED VIEW"])
async def test_views_are_listed_read_only(foreign, admin_client, conn, kind) -> None:
    await conn.execute(
        """INSERT INTO "Customer Notes" ("Note Text") VALUES ('seen through a view');"""
        f'CREATE {kind} "Note View" AS SELECT "ID", "Note Text" FROM "Customer Notes"'
    )
    page = await admin_client.get("/Note~20View")
    assert page.status_code == 200
    assert "is a view: it is listed read-only" in page.text
    assert "seen through a view" in page.text
    assert "/Note~20View/new" not in page.text
    searched = await admin_client.get("/Note~20View?q=through")
    assert "seen through a view" in searched.text
    before = await table_digest(conn, '"Customer Notes"')
    for url in ("/Note~20View", "/Note~20View/1", "/Note~20View/bulk"):
        refused = await admin_client.post(url, {"Note Text": "x", "action": "delete"})
        assert refused.status_code == 403, url
    assert await table_digest(conn, '"Customer Notes"') == before


# ---- a catalog that changes while the panel runs


async def test_tables_created_altered_and_dropped_while_running(admin_client, conn) -> None:
    assert (await admin_client.get("/late")).status_code == 404
    await conn.execute("CREATE TABLE late (id serial PRIMARY KEY, a text)")
    assert (await admin_client.get("/late")).status_code == 200
    assert "/late" in links((await admin_client.get("/")).text)
    await conn.execute("ALTER TABLE late ADD COLUMN b integer")
    form = await admin_client.get("/late/new")
    assert 'name="b"' in form.text
    created = await admin_client.post("/late", {"a": "x", "b": "5"})
    assert created.status_code == 303
    assert await conn.fetchval("SELECT b FROM late") == 5
    await conn.execute("DROP TABLE late")
    assert (await admin_client.get("/late")).status_code == 404
    assert (await admin_client.get("/late/1")).status_code == 404
    assert "/late" not in links((await admin_client.get("/")).text)


async def test_a_change_that_keeps_every_column_is_read_in_the_background(pool, conn) -> None:
    registry = Registry(["public"], check_seconds=0)
    registry.pool = pool
    await conn.execute("CREATE TABLE gauges (id serial PRIMARY KEY, v integer)")
    await registry.current(conn)
    # the change capture's triggers, installed in the background, call for one more read
    await registry.capture_settled()
    await registry.current(conn)
    await registry.capture_settled()

    def gauges():  # type: ignore[no-untyped-def]
        found = registry.named("public", "gauges")
        assert found is not None
        return found.info

    assert gauges().estimated_rows == 0
    await conn.execute(
        "INSERT INTO gauges (v) SELECT g FROM generate_series(1, 5000) g; ANALYZE gauges"
    )
    # the check that notices a new size estimate answers at once, from the catalog it had
    await registry.current(conn)
    assert gauges().estimated_rows == 0
    await registry.capture_settled()
    assert gauges().estimated_rows == 5000
    await conn.execute("TRUNCATE gauges")
    await registry.current(conn)
    assert gauges().estimated_rows == 5000
    await registry.capture_settled()
    assert gauges().estimated_rows == 0
    # a new column is read before the check answers
    await conn.execute("ALTER TABLE gauges ADD COLUMN w text")
    await registry.current(conn)
    assert [c.name for c in gauges().columns] == ["id", "v", "w"]
    await conn.execute("ALTER TABLE gauges RENAME TO dials")
    await registry.current(conn)
    await registry.capture_settled()
    assert registry.named("public", "gauges") is None
    assert registry.named("public", "dials") is not None


# never analyzed: the catalog reads its size from its file, which opens the table
BUSY = """
CREATE TABLE busy (id serial PRIMARY KEY, v integer DEFAULT 1)
    WITH (autovacuum_enabled = off);
INSERT INTO busy (v) SELECT g FROM generate_series(1, 3000) g;
CREATE TABLE busy_notes (id serial PRIMARY KEY, busy_id integer REFERENCES busy);
"""


def named(tables, name):  # type: ignore[no-untyped-def]
    return next((t for t in tables if t.name == name), None)


async def test_a_locked_table_is_left_as_it_was_known(pool, conn) -> None:
    await conn.execute(BUSY)
    before = named(await catalog.read_tables(conn, ["public"]), "busy")
    assert 3000 <= before.estimated_rows < 10000  # 16 pages: at most 4,681 rows
    known = {before.oid: before}
    async with pool.acquire() as other, other.transaction():
        await other.execute("ALTER TABLE busy ADD COLUMN extra text")
        async with conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '7s'")
            read = await asyncio.wait_for(catalog.read_catalog(conn, ["public"], known), 10)
            # the caller's own setting is back for the rest of its transaction
            assert await conn.fetchval("SELECT current_setting('lock_timeout')") == "7s"
        assert read.locked == {before.oid}
        kept = named(read.tables, "busy")
        assert [c.name for c in kept.columns] == ["id", "v"]
        assert [k.table for k in kept.referenced_by] == ["busy_notes"]
        assert named(read.tables, "busy_notes") is not None
        unknown = await asyncio.wait_for(catalog.read_catalog(conn, ["public"]), 10)
        assert named(unknown.tables, "busy") is None
    read = await catalog.read_catalog(conn, ["public"], known)
    assert not read.locked
    assert [c.name for c in named(read.tables, "busy").columns] == ["id", "v", "extra"]
    assert (
        await conn.fetchval("SELECT current_setting('lock_timeout')") == "3s"
    )  # the pool's LOCK_TIMEOUT_MS


async def test_a_lock_still_awaited_leaves_the_table_out_too(pool, conn) -> None:
    await conn.execute(BUSY)
    async with pool.acquire() as reader, pool.acquire() as altering:
        async with reader.transaction():
            await reader.execute("SELECT count(*) FROM busy")
            # queued behind the reader: everything that would open busy now queues behind it
            alter = asyncio.create_task(altering.execute("ALTER TABLE busy ADD COLUMN w text"))
            while not await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'busy'::regclass"
            ):
                await asyncio.sleep(0.01)
            read = await asyncio.wait_for(catalog.read_catalog(conn, ["public"]), 10)
            assert named(read.tables, "busy") is None
            assert named(read.tables, "busy_notes") is not None
        await alter
    assert named(await catalog.read_tables(conn, ["public"]), "busy") is not None


async def test_a_locked_table_does_not_hold_up_the_pages_of_others(
    pool, conn, admin_client
) -> None:
    await conn.execute(BUSY)
    assert (await admin_client.get("/busy")).status_code == 200
    async with pool.acquire() as other, other.transaction():
        await other.execute("ALTER TABLE busy ADD COLUMN extra text")
        # a new table: the next request reads the whole catalog before it answers
        await conn.execute("CREATE TABLE newcomer (id serial PRIMARY KEY, note text)")
        page = await asyncio.wait_for(admin_client.get("/newcomer"), 10)
        assert page.status_code == 200
        assert (await asyncio.wait_for(admin_client.get("/users"), 10)).status_code == 200
        assert (await admin_client.get("/")).status_code == 200
    # once the lock is gone, the table is read again, with its new column
    form = await admin_client.get("/busy/new")
    assert form.status_code == 200
    assert 'name="extra"' in form.text


async def test_a_table_locked_when_first_seen_is_read_once_free(pool, conn) -> None:
    registry = Registry(["public"], check_seconds=0)
    registry.pool = pool
    await registry.current(conn)
    await registry.capture_settled()
    await conn.execute(BUSY)
    async with pool.acquire() as other, other.transaction():
        await other.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        await asyncio.wait_for(registry.current(conn), 10)
        assert registry.named("public", "busy") is None
        assert registry.named("public", "busy_notes") is not None
    # the lock leaves the catalog as it was: the next check reads the table all the same
    await registry.current(conn)
    await registry.capture_settled()
    assert registry.named("public", "busy") is not None
    assert [k.table for k in registry.named("public", "busy").info.referenced_by] == ["busy_notes"]


# the lock check finds nothing, as when the lock is taken right after it
NO_LOCK_SEEN = "SELECT CASE WHEN $1::text[] IS NULL THEN NULL ELSE '{}'::oid[] END"


async def test_a_table_locked_after_the_lock_check_times_the_read_out(
    pool, conn, app, admin_client, monkeypatch
) -> None:
    await conn.execute(BUSY)
    registry = Registry(["public"], check_seconds=0)
    registry.pool = pool
    await registry.current(conn)
    await registry.capture_settled()
    monkeypatch.setattr(catalog, "LOCKED", NO_LOCK_SEEN)
    async with pool.acquire() as other, other.transaction():
        await other.execute("ALTER TABLE busy ADD COLUMN extra text")
        with pytest.raises(catalog.CatalogLocked):
            await asyncio.wait_for(catalog.read_catalog(conn, ["public"]), 10)
        # a panel with a catalog keeps it until a read gets through
        await conn.execute("CREATE TABLE newcomer (id serial PRIMARY KEY)")
        await asyncio.wait_for(registry.current(conn), 10)
        assert registry.named("public", "busy") is not None
        assert registry.named("public", "newcomer") is None
        # a panel with none yet answers 503, to be tried again soon
        app.state.registry = Registry(["public"], check_seconds=0)
        page = await asyncio.wait_for(admin_client.get("/users"), 10)
        assert page.status_code == 503
        assert page.headers["retry-after"] == str(catalog.CatalogLocked.retry_after)
        assert "Tables are being changed" in page.text
    await registry.current(conn)
    assert registry.named("public", "newcomer") is not None
    assert (await admin_client.get("/users")).status_code == 200


async def test_refresh_reads_the_catalog_now(app, admin_client, conn, settings) -> None:
    app.state.registry = Registry(settings.admin_schemas, check_seconds=3600)
    assert (await admin_client.get("/")).status_code == 200
    await conn.execute("CREATE TABLE fresh (id serial PRIMARY KEY)")
    assert (await admin_client.get("/fresh")).status_code == 404
    refreshed = await admin_client.post(
        "/tables/refresh", headers={"referer": "http://testserver/fresh"}
    )
    assert refreshed.status_code == 303
    assert (await admin_client.get("/fresh")).status_code == 200


async def test_a_column_dropped_under_an_open_form(app, admin_client, conn, settings) -> None:
    app.state.registry = Registry(settings.admin_schemas, check_seconds=3600)
    await conn.execute(
        "CREATE TABLE notes (id serial PRIMARY KEY, body text, extra text);"
        "INSERT INTO notes (body, extra) VALUES ('kept', 'doomed')"
    )
    await admin_client.post("/tables/refresh")
    edit = await admin_client.get("/notes/1/edit")
    data = form_dict(edit.text)
    data["body"] = "lost?"
    await conn.execute("ALTER TABLE notes DROP COLUMN extra")
    saved = await admin_client.http.post("/notes/1", data=data)
    assert saved.status_code == 409
    assert "changed while you were working" in saved.text
    assert await conn.fetchval("SELECT body FROM notes") == "kept"
    assert await audit_entries(conn, "notes") == []
    # the catalog was read again: the form now opens without the column
    again = await admin_client.get("/notes/1/edit")
    assert again.status_code == 200 and 'name="extra"' not in again.text


async def test_a_column_dropped_under_an_open_form_after_the_catalog_was_read_again(
    app, admin_client, conn, settings
) -> None:
    app.state.registry = Registry(settings.admin_schemas, check_seconds=3600)
    await conn.execute(
        "CREATE TABLE memos (id serial PRIMARY KEY, body text, extra text);"
        "INSERT INTO memos (body, extra) VALUES ('kept', 'doomed')"
    )
    await admin_client.post("/tables/refresh")
    edit = await admin_client.get("/memos/1/edit")
    data = form_dict(edit.text)
    data["extra"] = "my change to a column that is gone"
    await conn.execute("ALTER TABLE memos DROP COLUMN extra")
    await admin_client.post("/tables/refresh")  # the panel already knows the column is gone
    saved = await admin_client.http.post("/memos/1", data=data)
    assert saved.status_code == 409
    assert "'extra' no longer exist" in saved.text
    assert await conn.fetchval("SELECT body FROM memos") == "kept"
    assert await audit_entries(conn, "memos") == []
