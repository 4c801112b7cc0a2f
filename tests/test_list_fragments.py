"""The parts of a list page shared between requests (filter form, table head, live bar)
follow the list's state, the reader's permissions and the catalog, whoever asked first."""

from __future__ import annotations

import re

import pytest

from admin.declarations import DECLARATIONS
from admin.resources.registry import Registry
from admin.resources.spec import ADMINS, EVERYONE, Action, Resource

# staff may look at this table but not change or delete: no selection boxes for them
LOOK_ONLY = Resource(
    table="look_only",
    permissions={**dict.fromkeys(Action, ADMINS), Action.VIEW: EVERYONE},
)


def head(html: str) -> str:
    found = re.search(r"<thead>(.*?)</thead>", html, re.DOTALL)
    assert found is not None
    return found.group(1)


def headers(html: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>|[▲▼]", "", h).strip()
        for h in re.findall(r"<th[^>]*>(.*?)</th>", head(html), re.DOTALL)
    ]


@pytest.fixture
async def look_only(app, conn) -> None:  # type: ignore[no-untyped-def]
    await conn.execute(
        "CREATE TABLE look_only (id serial PRIMARY KEY, name text NOT NULL);"
        "INSERT INTO look_only (name) SELECT 'row ' || g FROM generate_series(1, 3) g"
    )
    app.state.registry = Registry(
        ("public",), declarations=[*DECLARATIONS, LOOK_ONLY], check_seconds=0
    )


async def test_permissions_shape_the_head_whoever_came_first(
    look_only, admin_client, staff_client
) -> None:
    for first, second in ((admin_client, staff_client), (staff_client, admin_client)):
        pages = {id(c): (await c.get("/look_only")).text for c in (first, second)}
        assert "data-select-page" in head(pages[id(admin_client)])
        assert "data-select-page" not in head(pages[id(staff_client)])


async def test_the_list_state_shapes_the_form_and_head(admin_client, conn) -> None:
    await conn.execute(
        "INSERT INTO users (username, email, full_name)"
        " SELECT 'zebra' || g, 'z' || g || '@example.com', 'Z' FROM generate_series(1, 3) g"
    )
    plain = (await admin_client.get("/users")).text
    searched = (await admin_client.get("/users?q=zebra")).text
    assert 'value="zebra"' in searched and 'value="zebra"' not in plain
    by_email = (await admin_client.get("/users?sort=email&dir=desc")).text
    assert re.search(
        r'aria-sort="descending">\s*<a href="/users\?sort=email&amp;dir=asc"', head(by_email)
    )
    assert 'aria-sort="descending"' not in head(plain)
    narrow = (await admin_client.get("/users?cols=email,username")).text
    assert [h for h in headers(narrow) if h and h != "Actions"] == ["Username", "Email"]
    assert len(headers(plain)) > len(headers(narrow))
    assert headers((await admin_client.get("/users")).text) == headers(plain)


async def test_a_catalog_change_shows_in_the_head(look_only, admin_client, conn) -> None:
    assert "Colour" not in headers((await admin_client.get("/look_only")).text)
    await conn.execute("ALTER TABLE look_only ADD COLUMN colour text")
    assert "Colour" in headers((await admin_client.get("/look_only")).text)
