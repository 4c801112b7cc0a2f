"""A record whose key is spelled like one of a list's own pages (/<table>/new, /count,
/views, /bulk, /import...) still has its page, its forms and its links; the list's pages
stay where they are."""

from __future__ import annotations

import re

from admin.app import create_app
from admin.resources import keys
from admin.resources.registry import Registry
from tests.browser_forms import form_dict


def _second_segments(app) -> set[str]:  # type: ignore[no-untyped-def]
    found = set()
    for route in app.routes:
        parts = getattr(route, "path", "").split("/")
        if len(parts) > 2 and parts[1] == "{resource}" and not parts[2].startswith("{"):
            found.add(parts[2])
    return found


def test_every_page_of_a_list_keeps_keys_clear_of_it(settings, pool) -> None:
    segments = _second_segments(create_app(settings, pool=pool))
    # a segment with a character outside A-Z a-z 0-9 _ - can never be an encoded key
    spellable = {s for s in segments if re.fullmatch(r"[A-Za-z0-9_-]+", s)}
    assert spellable and spellable <= keys.LIST_SEGMENTS


async def test_records_named_like_list_pages(app, settings, admin_client, conn) -> None:
    names = sorted(keys.LIST_SEGMENTS)
    await conn.execute("CREATE TABLE tags (name text PRIMARY KEY, note text NOT NULL)")
    await conn.executemany(
        "INSERT INTO tags (name, note) VALUES ($1, $2)", [(n, f"note of {n}") for n in names]
    )
    app.state.registry = Registry(settings.admin_schemas, check_seconds=0)
    listing = (await admin_client.get("/tags?limit=100")).text
    for name in names:
        segment = keys.encode([name])
        assert segment != name and keys.tilde_decode(segment) == name
        # the record link carries the list it sits in (not the table's first page)
        assert f'href="/tags/{segment}?back=%2Ftags%3Flimit%3D100"' in listing
        record = await admin_client.get(f"/tags/{segment}")
        assert record.status_code == 200 and f"note of {name}" in record.text, name
        edit = await admin_client.get(f"/tags/{segment}/edit")
        saved = await admin_client.post(
            f"/tags/{segment}", {**form_dict(edit.text), "note": f"changed {name}"}
        )
        assert saved.status_code == 303, (name, saved.text[:500])
        assert await conn.fetchval("SELECT note FROM tags WHERE name = $1", name) == (
            f"changed {name}"
        )
    # the list's own pages are unchanged
    assert 'name="note"' in (await admin_client.get("/tags/new")).text
    assert "exactly" in (await admin_client.get("/tags/count")).text
