"""A column may be named like one of a form's own fields (the CSRF token, the version token,
the list a form returns to, a lookup's search box…): its field still carries its value and
nothing else, in the record form, the inline editor and the one-field check."""

from __future__ import annotations

import dataclasses
import html
import re

import pytest

from tests.browser_forms import form_dict
from tests.conftest import LoggedIn

# every name a resource form or the inline editor sends beside the columns, and the escape;
# a text `version` is bookkeeping (not a field), and not the row's token (xmin is)
COLUMNS = ("back", "q", "field", "csrf_token", "_then", "_from", "__fields", "__key", "~odd")

TABLE = "CREATE TABLE releases (id serial PRIMARY KEY, version text DEFAULT 'v1', {})".format(
    ", ".join(f'"{c}" text NOT NULL' for c in COLUMNS)
)


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, catalog_check_s=0.0)


@pytest.fixture
async def releases(conn) -> None:  # type: ignore[no-untyped-def]
    await conn.execute(TABLE)


def input_names(page: str) -> dict[str, str]:
    """Each column's field name, found by the field's id (`f-<column>`) as a person finds it
    by its label."""
    found = {}
    for column in COLUMNS:
        match = re.search(rf'id="f-{re.escape(html.escape(column))}"[^>]*?name="([^"]*)"', page)
        assert match, f"no field for {column!r}"
        found[column] = html.unescape(match.group(1))
    return found


def action(page: str) -> str:
    match = re.search(r'<form id="record-form" method="post" action="([^"]*)"', page)
    assert match, page
    return html.unescape(match.group(1))


def typed(page: str, values: dict[str, str]) -> dict[str, str]:
    data = form_dict(page)
    for column, name in input_names(page).items():
        data[name] = values[column]
    return data


async def saved(conn, key: int = 1) -> dict[str, str]:  # type: ignore[no-untyped-def]
    row = await conn.fetchrow("SELECT * FROM releases WHERE id = $1", key)
    return {c: row[c] for c in COLUMNS}


async def test_fields_named_like_the_forms_own_keep_their_values(
    releases, admin_client: LoggedIn, conn
) -> None:
    first = {c: f"first {c}" for c in COLUMNS}
    new = await admin_client.get("/releases/new")
    assert new.status_code == 200
    names = input_names(new.text)
    assert len(set(names.values())) == len(COLUMNS)
    created = await admin_client.http.post(action(new.text), data=typed(new.text, first))
    assert created.status_code == 303, created.text
    assert await saved(conn) == first

    second = {c: f"second {c}" for c in COLUMNS}
    edit = await admin_client.get("/releases/1/edit")
    assert edit.status_code == 200
    assert await saved(conn) == first
    stale = typed(edit.text, second)
    response = await admin_client.http.post(action(edit.text), data=stale)
    assert response.status_code == 303, response.text
    assert await saved(conn) == second

    # the row's own token still guards it: the same (now stale) form is a conflict
    again = await admin_client.http.post(action(edit.text), data={**stale, names["back"]: "third"})
    assert again.status_code == 409
    assert await saved(conn) == second


async def test_the_inline_editor_and_the_field_check_read_the_columns_fields(
    releases, admin_client: LoggedIn, conn
) -> None:
    await conn.execute(
        "INSERT INTO releases ({}) VALUES ({})".format(
            ", ".join(f'"{c}"' for c in COLUMNS),
            ", ".join(f"'old {c}'" for c in COLUMNS),
        )
    )
    editor = await admin_client.get("/releases/1/inline")
    assert editor.status_code == 200, editor.text
    inputs = []
    for tag in re.findall(r"<input[^>]*>", editor.text):
        attributes = {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)}
        inputs.append((attributes["name"], attributes["value"], attributes.get("aria-label")))
    edited = [(n, v) for n, v, label in inputs if label and v.startswith("old ")]
    assert len(edited) >= 3, editor.text  # the list shows several of these columns
    posted = {n: v for n, v, _ in inputs}
    posted.update({n: "new " + v.removeprefix("old ") for n, v in edited})
    response = await admin_client.post("/releases/1/inline", data=posted)
    assert response.status_code == 200, response.text
    now = await saved(conn)
    for _, value in edited:
        column = value.removeprefix("old ")
        assert now[column] == "new " + column, now
    assert sum(v.startswith("new ") for v in now.values()) == len(edited)

    page = await admin_client.get("/releases/1/edit")
    names = input_names(page.text)
    check = await admin_client.post(
        "/releases/validate?field=q", data={names["q"]: "", "__key": "1"}
    )
    assert check.status_code == 200
    assert "required" in check.text.lower()
    # the column named "field" is typed in, and the check still knows which field it is
    fine = await admin_client.post(
        "/releases/validate?field=field", data={names["field"]: "typed", "__key": "1"}
    )
    assert fine.status_code == 200, fine.text
    assert "required" not in fine.text.lower()
