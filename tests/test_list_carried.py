"""The list's state travels with its rows and forms: a row drawn again on its own (the row
endpoint, the inline editor, its save, cancel and conflict) has the columns the list shows,
and a form opened from a list returns to that list; a `back` elsewhere is ignored."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import asyncpg

from tests.conftest import LoggedIn
from tests.test_user_forms import form_of, make_user

HX = {"HX-Request": "true"}
LIST = "/users?q=carry&sort=email&dir=desc&cols=username%2Cemail&limit=25"


def _attr(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    assert match, pattern
    return html.unescape(match.group(1))


def _inputs(text: str) -> set[str]:
    """The names of the editable fields of an inline editor."""
    return set(re.findall(r'<(?:input|select) name="(\w+)"', text)) - {
        "version",
        "__fields",
    }


def _cells(text: str) -> int:
    row = re.search(r"<tr[^>]*>(.*?)</tr>", text, re.S)
    assert row
    return row.group(1).count("<td")


async def test_every_row_path_keeps_the_columns_the_list_shows(
    staff_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    alice = await make_user(conn, "carry.alice")
    page = await staff_client.get(LIST)
    assert page.status_code == 200
    opener = _attr(page.text, rf'hx-get="(/users/{alice["id"]}/inline[^"]*)"')
    assert "cols=username%2Cemail" in opener and "back=" in opener
    usual = await staff_client.get(f"/users/{alice['id']}/row", headers=HX)
    editor = await staff_client.get(opener, headers=HX)
    assert _inputs(editor.text) == {"username", "email"}
    # select box, two columns, actions: the list's shape, not the table's own six columns
    assert _cells(editor.text) == 4 < _cells(usual.text)
    save = _attr(editor.text, r'data-inline-save hx-post="([^"]+)"')
    cancel = _attr(editor.text, r'data-inline-cancel hx-get="([^"]+)"')
    assert save.endswith(opener.removeprefix(f"/users/{alice['id']}/inline"))
    saved = await staff_client.post(
        save, {**form_of(alice, email="carried@example.com")}, headers=HX
    )
    assert saved.status_code == 200 and "carried@example.com" in saved.text
    assert _cells(saved.text) == 4 and "Carry.Alice" not in saved.text  # full_name not shown
    # the saved row's own links still carry the list's state
    assert _attr(saved.text, r'hx-get="(/users/\d+/inline[^"]*)"') == opener
    cancelled = await staff_client.get(cancel, headers=HX)
    assert cancelled.status_code == 200 and _cells(cancelled.text) == 4
    # a conflict (the version the form read is gone) keeps the list's columns, and so do
    # its choices
    stale = await staff_client.post(save, form_of(alice, email="stale@example.com"), headers=HX)
    assert stale.status_code == 409 and _inputs(stale.text) == {"username", "email"}
    reload = _attr(stale.text, r'class="primary" data-inline-save hx-get="([^"]+)"')
    assert "cols=username%2Cemail" in reload
    invalid = await staff_client.post(
        save, form_of(alice, username="NO", version=str(alice["version"] + 1)), headers=HX
    )
    assert invalid.status_code == 422 and _cells(invalid.text) == 4
    # live updates ask the row endpoint with what the table says
    query = _attr(page.text, r'<table class="list" data-list data-row-query="([^"]+)"')
    live = await staff_client.get(f"/users/{alice['id']}/row{query}", headers=HX)
    assert _cells(live.text) == 4
    bad = await staff_client.get(f"/users/{alice['id']}/row?cols=password_hash", headers=HX)
    assert bad.status_code == 400


async def test_a_form_opened_from_a_list_returns_to_that_list(
    staff_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    alice = await make_user(conn, "carry.alice")
    page = await staff_client.get(LIST)
    edit = _attr(page.text, rf'<a href="(/users/{alice["id"]}/edit[^"]*)"')
    form = await staff_client.get(edit)
    state = _attr(form.text, r'<input type="hidden" name="back" value="([^"]+)"')
    # the list's own spelling of its state: search, sort, page size, columns
    assert state == "/users?q=carry&sort=email&dir=desc&limit=25&cols=username%2Cemail"
    assert edit.endswith("?back=" + quote(state, safe=""))
    assert f'<a href="{html.escape(state)}">Cancel</a>' in form.text
    saved = await staff_client.post(
        f"/users/{alice['id']}", {**form_of(alice, full_name="Back Again"), "back": state}
    )
    assert saved.status_code == 303 and saved.headers["location"] == state
    assert await conn.fetchval("SELECT full_name FROM users") == "Back Again"
    listed = await staff_client.get(saved.headers["location"])
    assert listed.status_code == 200 and "Back Again" not in listed.text  # cols: no full_name
    assert 'aria-sort="descending"' in listed.text
    # "save and continue" keeps the way back; a new record from the list returns there too
    again = await staff_client.post(
        f"/users/{alice['id']}",
        {
            **form_of(alice, full_name="Once More", version=str(alice["version"] + 1)),
            "back": state,
            "_then": "continue",
        },
    )
    assert again.headers["location"] == f"/users/{alice['id']}/edit?back={quote(state, safe='')}"
    new = _attr(page.text, r'<a class="button primary" href="(/users/new[^"]*)"')
    assert "back=" in new and state in html.unescape((await staff_client.get(new)).text)
    created = await staff_client.post(
        "/users",
        {
            "username": "carry.bob",
            "email": "bob@example.com",
            "full_name": "Bob",
            "is_active": "true",
            "back": state,
        },
    )
    assert created.status_code == 303 and created.headers["location"] == state
    # delete from the list: the confirm page and the delete itself return to it
    bob = await conn.fetchrow("SELECT id, version FROM users WHERE username = 'carry.bob'")
    confirm = await staff_client.get(f"/users/{bob['id']}/delete?back={quote(state, safe='')}")
    assert f'<a href="{html.escape(state)}">Cancel</a>' in confirm.text
    gone = await staff_client.post(
        f"/users/{bob['id']}/delete", {"version": str(bob["version"]), "back": state}
    )
    assert gone.status_code == 303 and gone.headers["location"] == state


async def test_a_back_that_leads_elsewhere_is_ignored(
    staff_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    alice = await make_user(conn, "carry.alice")
    version = alice["version"]
    for bad in (
        "//evil.example",
        "//evil.example/users",
        "https://evil.example/users",
        "/users/../staff",
        "/usersx",
        "/orders?q=1",
        "/\\evil.example",
        "/users?q=a\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
    ):
        form = await staff_client.get(f"/users/{alice['id']}/edit?back={quote(bad, safe='')}")
        assert 'name="back"' not in form.text, bad
        saved = await staff_client.post(
            f"/users/{alice['id']}",
            {**form_of(alice, full_name=f"N{version}", version=str(version)), "back": bad},
        )
        assert saved.status_code == 303, bad
        assert saved.headers["location"] == f"/users/{alice['id']}", bad  # today's behaviour
        version += 1


async def test_a_list_sorted_by_a_column_it_does_not_show_still_pages(
    staff_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    for name in ("carry.a", "carry.b", "carry.c"):
        await make_user(conn, name, email=f"{name[::-1]}@example.com")
    first = await staff_client.get("/users?cols=username&sort=email&limit=2")
    assert first.status_code == 200
    following = _attr(first.text, r'<a href="([^"]+)"[^>]*rel="next"')
    second = await staff_client.get(following)
    assert second.status_code == 200 and second.text.count('<tr id="row-') == 1


async def test_edit_and_delete_from_a_record_page_keep_the_list_to_go_back_to(
    staff_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    alice = await make_user(conn, "carry.alice")
    bob = await make_user(conn, "carry.bob")
    page = await staff_client.get(LIST)
    state = "/users?q=carry&sort=email&dir=desc&limit=25&cols=username%2Cemail"
    back = quote(state, safe="")
    record = f"/users/{alice['id']}"
    opened = _attr(page.text, rf'<tr id="row-{alice["id"]}" tabindex="0" data-href="([^"]+)"')
    assert opened == f"{record}?back={back}"
    shown = await staff_client.get(opened)
    assert shown.status_code == 200
    assert _attr(shown.text, r'<a href="([^"]+)" data-back-to-list>Back to list</a>') == state
    edit = _attr(shown.text, r'<a class="button primary" href="([^"]+)">Edit</a>')
    assert edit == f"{record}/edit?back={back}&_from=record"
    form = await staff_client.get(edit)
    assert _attr(form.text, r'<input type="hidden" name="back" value="([^"]+)"') == state
    assert '<input type="hidden" name="_from" value="record">' in form.text
    # Cancel returns to the record page, which still knows its list
    assert _attr(form.text, r'<a href="([^"]+)">Cancel</a>') == opened
    fields = {"back": state, "_from": "record"}
    saved = await staff_client.post(record, {**form_of(alice, full_name="Kept"), **fields})
    assert saved.status_code == 303 and saved.headers["location"] == opened
    again = await staff_client.get(saved.headers["location"])
    assert _attr(again.text, r'<a href="([^"]+)" data-back-to-list>Back to list</a>') == state
    version = str(alice["version"] + 1)
    kept = await staff_client.post(
        record,
        {**form_of(alice, full_name="Still", version=version), **fields, "_then": "continue"},
    )
    assert kept.headers["location"] == edit
    # a conflict's "use the saved version" reopens the same chain
    stale = await staff_client.post(record, {**form_of(alice), **fields, "_then": "reload"})
    assert stale.headers["location"] == edit
    conflict = await staff_client.post(record, {**form_of(alice, full_name="Late"), **fields})
    assert conflict.status_code == 409
    choices = conflict.text.split('<div class="conflict-choices">', 1)[1].split("</div>", 1)[0]
    assert _attr(choices, r'<a href="([^"]+)">Cancel</a>') == opened
    # delete from the record page: Cancel goes back to it, the delete to the list
    shown = await staff_client.get(f"/users/{bob['id']}?back={back}")
    delete = _attr(shown.text, r'<a class="button danger" href="([^"]+)">Delete…</a>')
    assert delete == f"/users/{bob['id']}/delete?back={back}&_from=record"
    confirm = await staff_client.get(delete)
    assert _attr(confirm.text, r'<a href="([^"]+)">Cancel</a>') == f"/users/{bob['id']}?back={back}"
    gone = await staff_client.post(
        f"/users/{bob['id']}/delete", {"version": str(bob["version"]), **fields}
    )
    assert gone.status_code == 303 and gone.headers["location"] == state
    # the table's own first page needs no way back: the record page's link goes there anyway
    plain = await staff_client.get("/users")
    assert f'data-href="{record}"' in plain.text
    alone = await staff_client.get(record)
    assert _attr(alone.text, r'<a href="([^"]+)" data-back-to-list>Back to list</a>') == "/users"
    assert _attr(alone.text, r'<a class="button primary" href="([^"]+)">Edit</a>') == (
        f"{record}/edit"
    )
    # a `_from` without a list to return to changes nothing
    lone = await staff_client.post(
        record, {**form_of(alice, version=str(alice["version"] + 2)), "_from": "record"}
    )
    assert lone.headers["location"] == record


async def test_a_record_history_keeps_the_list_to_go_back_to(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    alice = await make_user(conn, "carry.hist")
    state = "/users?q=carry&sort=email&dir=desc&limit=25&cols=username%2Cemail"
    back = quote(state, safe="")
    record = f"/users/{alice['id']}"
    changed = await admin_client.post(
        record, {**form_of(alice, full_name="Changed Once"), "back": state}
    )
    assert changed.status_code == 303
    shown = await admin_client.get(f"{record}?back={back}")
    history = _attr(shown.text, r'<a href="([^"]+)">History</a>')
    assert history == f"{record}/history?back={back}"
    page = await admin_client.get(history)
    assert page.status_code == 200
    crumbs = page.text.split('aria-label="Breadcrumbs">', 1)[1].split("</nav>", 1)[0]
    assert [html.unescape(h) for h in re.findall(r'href="([^"]+)"', crumbs)] == [
        state,
        f"{record}?back={back}",
    ]
    # restoring from there comes back to the record page, which still knows its list
    restore = page.text.split('action="' + record + '/revert"', 1)[1].split("</form>", 1)[0]
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', restore))
    assert html.unescape(fields["back"]) == state
    restored = await admin_client.post(
        f"{record}/revert", {k: html.unescape(v) for k, v in fields.items()}
    )
    assert restored.status_code == 303, restored.text
    assert restored.headers["location"] == f"{record}?back={back}"
    assert (await conn.fetchval("SELECT full_name FROM users WHERE id = $1", alice["id"])) != (
        "Changed Once"
    )
    # a way back that leads elsewhere is dropped here too
    elsewhere = await admin_client.get(f"{record}/history?back=%2F%2Fevil.example")
    assert "evil.example" not in elsewhere.text
