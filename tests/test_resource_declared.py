"""A table declared in a few lines gets every route, the access checks, one audit entry per
row written and the conflict check; a big table without indexes is searched by exact value."""

from __future__ import annotations

import json
import re

import pytest

from admin.declarations import DECLARATIONS
from admin.resources.query import ListQuery
from admin.resources.registry import Registry
from admin.resources.routes import resource_routes
from admin.resources.spec import ADMINS, EVERYONE, Action, Field, Resource
from tests.browser_forms import audit_entries, form_dict, links, table_digest
from tests.conftest import LoggedIn
from tests.route_walk import methods_of

GADGETS = Resource(
    table="gadgets",
    label="gadget",
    plural="gadgets",
    list_columns=("id", "name", "price"),
    fields={"name": Field(validate=lambda v: None if len(v) >= 3 else "At least 3 characters.")},
)
# another table, where staff may only look
LOCKED = Resource(
    table="locked", permissions={**dict.fromkeys(Action, ADMINS), Action.VIEW: EVERYONE}
)

SCHEMA = """
CREATE TABLE gadgets (id serial PRIMARY KEY, name text UNIQUE NOT NULL,
                      price numeric(8, 2) NOT NULL DEFAULT 0);
CREATE TABLE locked (id serial PRIMARY KEY, name text NOT NULL,
                     version integer NOT NULL DEFAULT 1);
INSERT INTO gadgets (name, price) VALUES ('sprocket', 1.50), ('widget', 2), ('gizmo', 3);
INSERT INTO locked (name) VALUES ('kept');
"""


@pytest.fixture
async def declared(app, conn) -> None:  # type: ignore[no-untyped-def]
    await conn.execute(SCHEMA)
    app.state.registry = Registry(
        ("public",), declarations=[*DECLARATIONS, GADGETS, LOCKED], check_seconds=0
    )


async def test_a_declared_table_gets_every_route(declared, staff_client: LoggedIn, conn) -> None:
    http = staff_client
    home = await http.get("/")
    assert re.search(r'<a href="/gadgets"\s*>Gadgets</a>', home.text)  # declared: main nav
    listing = await http.get("/gadgets")
    assert listing.status_code == 200 and "sprocket" in listing.text
    assert (await http.get("/gadgets/new")).status_code == 200
    assert ">3 exactly<" in (await http.get("/gadgets/count")).text
    assert "widget" in (await http.get("/gadgets/lookup?q=idg&field=f")).text
    check = await http.post("/gadgets/validate", {"field": "name", "name": "widget"})
    assert "already has this name" in check.text
    short = await http.post("/gadgets", {"name": "ab", "price": "1"})
    assert short.status_code == 422 and "At least 3 characters." in short.text
    created = await http.post("/gadgets", {"name": "doohickey", "price": "9.99"})
    assert created.status_code == 303
    new_id = await conn.fetchval("SELECT id FROM gadgets WHERE name = 'doohickey'")
    record = f"/gadgets/{new_id}"
    assert (await http.get(record)).status_code == 200
    assert (await http.get(record + "/row")).status_code == 200
    edit = await http.get(record + "/edit")
    assert (await http.post(record, {**form_dict(edit.text), "price": "10"})).status_code == 303
    inline = await http.get(record + "/inline")
    saved = await http.post(record + "/inline", {**form_dict(inline.text, None), "name": "doodad"})
    assert saved.status_code == 200 and "doodad" in saved.text
    assert (await http.post(record + "/price", {"price": "1"})).status_code == 404
    confirm = await http.post("/gadgets/bulk", {"action": "delete", "ids": "1"})
    assert confirm.status_code == 200 and "sprocket" in await _names(conn)
    bulk = await http.post("/gadgets/bulk", {"action": "delete", "ids": "1", "confirm": "yes"})
    assert bulk.status_code == 303 and "sprocket" not in await _names(conn)
    gone = await http.http.delete(
        "/gadgets/2",
        headers={"HX-Request": "true", "HX-Target": "row-2", "X-CSRF-Token": http.csrf},
    )
    assert gone.status_code == 200 and gone.text == ""
    page = await http.get(record + "/delete")
    assert (
        await http.http.post(record + "/delete", data=form_dict(page.text, None))
    ).status_code == 303
    assert await _names(conn) == ["gizmo"]
    entries = await audit_entries(conn, "gadgets")
    assert [e["action"] for e in entries] == [
        "create", "update", "update", "bulk_delete", "delete", "delete"
    ]  # fmt: skip
    assert all(e["staff_id"] == http.staff_id for e in entries)
    assert [e["resource_id"] for e in entries] == [str(new_id)] * 3 + ["1", "2", str(new_id)]
    update = entries[2]
    assert (update["before"]["name"], update["after"]["name"]) == ("doohickey", "doodad")


async def _names(conn) -> list[str]:  # type: ignore[no-untyped-def]
    rows = await conn.fetch("SELECT name FROM gadgets ORDER BY id")
    return [r["name"] for r in rows]


async def test_a_declaration_decides_who_may_do_what(
    declared, staff_client: LoggedIn, client, conn
) -> None:
    assert (await staff_client.get("/locked")).status_code == 200
    assert (await staff_client.get("/locked/1")).status_code == 200
    before = await table_digest(conn, "locked")
    for route in resource_routes():
        url = route.path.replace("{resource}", "locked").replace("{key}", "1")
        url = url.replace("{field}", "name")
        for method in methods_of(route):
            anonymous = await client.request(method, url)
            assert anonymous.status_code == 303, f"{method} {url}"
            assert anonymous.headers["location"].startswith("/login?next=")
            if getattr(route.endpoint, "permission", None) is Action.VIEW:
                continue
            data = {"csrf_token": staff_client.csrf, "name": "x", "version": "1", "ids": "1"}
            refused = await staff_client.http.request(
                method, url, data=data if method != "GET" else None
            )
            assert refused.status_code == 403, f"{method} {url}"
    page = await staff_client.get("/locked/1")
    assert "/locked/1/edit" not in links(page.text) and "/locked/1/delete" not in links(page.text)
    assert await table_digest(conn, "locked") == before
    assert await audit_entries(conn, "locked") == []


@pytest.mark.parametrize(
    ("table", "row_id", "token"), [("gadgets", 3, "xmin"), ("locked", 1, "version")]
)
async def test_two_edits_from_one_form_version_conflict(
    declared, admin_client: LoggedIn, conn, table, row_id, token
) -> None:
    url = f"/{table}/{row_id}"
    form = form_dict((await admin_client.get(url + "/edit")).text)
    name = f"SELECT name FROM {table} WHERE id = {row_id}"
    first = await admin_client.http.post(url, data={**form, "name": "first edit"})
    assert first.status_code == 303
    second = await admin_client.http.post(url, data={**form, "name": "second edit"})
    assert second.status_code == 409
    assert "Overwrite with mine" in second.text and "first edit" in second.text
    assert await conn.fetchval(name) == "first edit"
    assert len(await audit_entries(conn, table, "update")) == 1
    # the conflict form carries the row's new xmin or version: sending it again overwrites
    again = await admin_client.http.post(url, data=form_dict(second.text))
    assert again.status_code == 303
    assert await conn.fetchval(name) == "second edit"


# ---- a big table with no index beside its primary key


async def test_a_big_table_without_indexes_is_searched_by_exact_key(app, admin_client, conn):
    await conn.execute(
        "CREATE TABLE big_log (id bigint PRIMARY KEY, code text, qty integer, note text);"
        "INSERT INTO big_log SELECT g, 'code-' || g, g % 100, 'note ' || g"
        " FROM generate_series(1, 150000) g;"
        "ANALYZE big_log"
    )
    assert (await admin_client.post("/tables/refresh")).status_code == 303
    page = await admin_client.get("/big_log")
    assert page.status_code == 200
    assert "Search on this large table matches exact values of: ID" in page.text
    assert "(estimate)" in page.text
    sorts = {h for h in links(page.text) if "sort=" in h or "dir=" in h}
    assert all("sort=" not in h or "sort=id" in h for h in sorts)
    for column in ("code", "qty", "note"):
        assert (await admin_client.get(f"/big_log?sort={column}")).status_code == 400
    found = await admin_client.get("/big_log?q=12345")
    assert "code-12345" in found.text and "code-123450" not in found.text
    nothing = await admin_client.get("/big_log?q=code-12345")
    assert nothing.status_code == 200 and "match this search." in nothing.text
    table = app.state.registry.get("big_log")
    where, order, args = ListQuery.from_params(table, {"q": "12345"}).filter_sql()
    plan = await conn.fetchval(
        f"EXPLAIN (FORMAT JSON) SELECT * FROM big_log AS t {where} {order} LIMIT 51", *args
    )
    assert "Seq Scan" not in json.dumps(plan)
