"""Foreign keys between tables the panel has never seen (links with labels, the autocomplete,
a refused delete), and every route of such a table refused to a staff member."""

from __future__ import annotations

import dataclasses
import re

import pytest

from admin.resources.routes import resource_routes
from tests.browser_forms import audit_entries, form_dict, links, table_digest
from tests.conftest import LoggedIn
from tests.route_walk import methods_of

SCHEMA = """
CREATE TABLE "Authors" (id serial PRIMARY KEY, "Pen Name" text UNIQUE NOT NULL);
CREATE TABLE books (id serial PRIMARY KEY, title text NOT NULL,
                    author_id integer REFERENCES "Authors" (id) ON DELETE RESTRICT);
"""
PEN_NAMES = ["100% Real", "50%_off", "50x off", "5000 off", "O'Brien", 'Say "hi"', "<b>Bold</b>"]


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, catalog_check_s=0.0)


@pytest.fixture
async def library(conn) -> dict[str, int]:  # type: ignore[no-untyped-def]
    await conn.execute(SCHEMA)
    ids = {}
    for name in PEN_NAMES:
        ids[name] = await conn.fetchval(
            'INSERT INTO "Authors" ("Pen Name") VALUES ($1) RETURNING id', name
        )
    await conn.executemany(
        "INSERT INTO books (title, author_id) VALUES ($1, $2)",
        [("First", ids["O'Brien"]), ("Second", ids["O'Brien"]), ("Third", ids["50%_off"])],
    )
    return ids


async def test_a_reference_links_to_its_record_with_its_label(library, admin_client) -> None:
    page = await admin_client.get("/books")
    assert page.status_code == 200
    obrien = library["O'Brien"]
    # text content: an apostrophe needs no escaping there
    assert re.search(rf'<a href="/Authors/{obrien}">O(&#39;|&#x27;|\')Brien</a>', page.text)
    shown = await admin_client.get(f"/Authors/{obrien}")
    assert shown.status_code == 200
    # the author's page lists the books that refer to it, with a link to the filtered list
    assert "First" in shown.text and "Second" in shown.text and "Third" not in shown.text
    assert f"/books?author_id={obrien}" in [h.replace("&amp;", "&") for h in links(shown.text)]
    filtered = await admin_client.get(f"/books?author_id={obrien}")
    assert "First" in filtered.text and "Third" not in filtered.text


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("%", ["100% Real", "50%_off"]),
        ("_", ["50%_off"]),
        ("0%", ["100% Real", "50%_off"]),
        ("'", ["O'Brien"]),
        ('"', ['Say "hi"']),
        ("<b>", ["<b>Bold</b>"]),
        ("\\", []),
    ],
)
async def test_the_autocomplete_matches_wildcards_and_quotes_literally(
    library, admin_client, typed, expected
) -> None:
    found = await admin_client.http.get(
        "/Authors/lookup", params={"q": typed, "field": "f-author_id"}
    )
    assert found.status_code == 200
    values = re.findall(r'data-value="(\d+)"', found.text)
    assert sorted(int(v) for v in values) == sorted(library[n] for n in expected)
    assert "<b>Bold" not in found.text
    assert 'data-pick-for="f-author_id"' in found.text or not expected


async def test_the_form_offers_the_autocomplete_not_a_select(library, admin_client) -> None:
    form = await admin_client.get("/books/new")
    assert 'hx-get="/Authors/lookup?field=f-author_id"' in form.text
    assert "<select" not in form.text


async def test_a_referenced_record_says_who_refers_to_it_and_is_kept(
    library, admin_client, conn
) -> None:
    obrien = library["O'Brien"]
    confirm = await admin_client.get(f"/Authors/{obrien}/delete")
    assert confirm.status_code == 200
    assert re.search(r"2 books</a>", confirm.text)
    assert "the delete will be refused" in confirm.text
    books = await conn.fetch("SELECT id FROM books WHERE author_id = $1", obrien)
    for book in (r["id"] for r in books):
        assert f"/books/{book}" in links(confirm.text)
    before = (await table_digest(conn, '"Authors"'), await table_digest(conn, "books"))
    refused = await admin_client.http.post(
        f"/Authors/{obrien}/delete", data=form_dict(confirm.text, None)
    )
    assert refused.status_code == 409
    assert "2 books still refer to it" in refused.text
    after = (await table_digest(conn, '"Authors"'), await table_digest(conn, "books"))
    assert after == before
    assert await audit_entries(conn, "Authors") == []
    htmx = await admin_client.http.delete(
        f"/Authors/{obrien}", headers={"HX-Request": "true", "X-CSRF-Token": admin_client.csrf}
    )
    assert htmx.status_code == 409 and "still refer to it" in htmx.text
    bulk = await admin_client.post(
        "/Authors/bulk", {"action": "delete", "ids": str(obrien), "confirm": "yes"}
    )
    assert bulk.status_code == 303
    assert (await table_digest(conn, '"Authors"'), await table_digest(conn, "books")) == before
    assert await audit_entries(conn, "Authors") == []


async def test_a_reference_to_nothing_is_a_field_error(library, admin_client, conn) -> None:
    refused = await admin_client.post("/books", {"title": "Orphan", "author_id": "99999"})
    assert refused.status_code == 422
    assert "There is no such record to refer to." in refused.text
    assert await conn.fetchval("SELECT count(*) FROM books WHERE title = 'Orphan'") == 0


# ---- an introspected table is for admins: every route, every method


def _sample(path: str, key: str) -> str:
    return (
        path.replace("{resource}", "Authors").replace("{key}", key).replace("{field}", "Pen Name")
    )


async def test_staff_get_403_on_every_route_of_an_introspected_table(
    library, staff_client: LoggedIn, admin_client: LoggedIn, conn
) -> None:
    key = str(library["O'Brien"])
    before = (await table_digest(conn, '"Authors"'), await table_digest(conn, "books"))
    audit_before = await conn.fetchval("SELECT count(*) FROM audit_log")
    tried = []
    for route in resource_routes():
        url = _sample(route.path, key)
        for method in methods_of(route):
            for headers in ({}, {"HX-Request": "true"}):
                data = {
                    "csrf_token": staff_client.csrf,
                    "Pen Name": "hacked",
                    "version": "0",
                    "action": "delete",
                    "ids": key,
                    "confirm": "yes",
                    "field": "Pen Name",
                    "q": "O",
                }
                kwargs = {} if method == "GET" else {"data": data}
                response = await staff_client.http.request(
                    method, url, headers={**headers, "X-CSRF-Token": staff_client.csrf}, **kwargs
                )
                assert response.status_code == 403, f"{method} {url} {headers}"
                tried.append((method, route.path))
    assert len(tried) == 2 * sum(len(methods_of(r)) for r in resource_routes())
    assert (await table_digest(conn, '"Authors"'), await table_digest(conn, "books")) == before
    assert await conn.fetchval("SELECT count(*) FROM audit_log") == audit_before
    home = await staff_client.get("/")
    assert "/Authors" not in links(home.text) and "More tables" not in home.text
    # the same routes are open to an admin
    assert (await admin_client.get(f"/Authors/{key}")).status_code == 200
