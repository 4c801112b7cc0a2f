"""Record forms over HTTP: "required" before the format rule, hints before typing, the error
summary, where a save goes next, uniqueness errors that link, conflict choices, inline saves
that confirm."""

from __future__ import annotations

import json
import re

from admin.display import wording
from tests.conftest import LoggedIn
from tests.test_user_forms import form_of, make_user


def _field_error(html: str, name: str) -> str:
    match = re.search(rf'<p id="{name}-error" class="field-error"[^>]*>(.*?)</p>', html, re.S)
    assert match, f"no error slot for {name}"
    return match.group(1).strip()


async def test_an_empty_required_field_says_required_not_the_format(staff_client: LoggedIn):
    response = await staff_client.post("/users", {"username": "", "email": "a@example.com"})
    assert response.status_code == 422
    assert _field_error(response.text, "username") == "Username is required."
    # a typed but malformed value gets the format rule
    response = await staff_client.post("/users", {"username": "A B", "email": "a@example.com"})
    assert "lowercase letters" in _field_error(response.text, "username")


async def test_the_error_summary_lists_and_links_every_invalid_field(staff_client: LoggedIn):
    response = await staff_client.post("/users", {"username": "", "email": "nope"})
    assert response.status_code == 422
    summary = re.search(r'<div id="error-summary".*?</div>', response.text, re.S)
    assert summary, "no error summary"
    assert "data-focus-first" in summary.group(0) and 'role="alert"' in summary.group(0)
    links = re.findall(r'<a href="#(f-[a-z_]+)" data-field-link>([^<]*)</a>', summary.group(0))
    assert [target for target, _ in links] == ["f-username", "f-email"]
    assert links[0][1] == "Username is required."
    assert links[1][1].startswith("Email: Enter a valid email address")
    assert "2 problems" in summary.group(0)
    # the summary's targets exist, and each invalid field is marked
    assert re.search(r'<input id="f-username"[^>]*aria-invalid="true"', response.text, re.S)
    assert 'class="field field-email invalid"' in response.text


async def test_a_valid_form_has_no_summary_and_shows_hints_before_typing(staff_client: LoggedIn):
    page = await staff_client.get("/users/new")
    assert "error-summary" not in page.text
    hint = re.search(r'<p id="f-username-hint" class="help muted">([^<]*)</p>', page.text)
    assert hint and "lowercase letters" in hint.group(1)
    field = re.search(r'<input id="f-username"[^>]*>', page.text, re.S)
    assert field and 'aria-describedby="f-username-hint username-error"' in field.group(0)
    # the hint comes before the field it describes
    assert page.text.index('id="f-username-hint"') < page.text.index('id="f-username"')
    products = await staff_client.get("/products/new")
    assert "A whole number from 0 to 2,147,483,647." in products.text
    assert "An amount from 0 to 9,999,999,999.99" in products.text


async def test_save_and_continue_and_save_and_add_another(staff_client: LoggedIn, conn):
    data = {"username": "carol", "email": "carol@example.com", "_then": "continue"}
    created = await staff_client.post("/users", data)
    user_id = await conn.fetchval("SELECT id FROM users WHERE username = 'carol'")
    assert created.status_code == 303
    assert created.headers["location"] == f"/users/{user_id}/edit"
    data = {"username": "dave", "email": "dave@example.com", "_then": "another"}
    created = await staff_client.post("/users", data)
    assert created.headers["location"] == "/users/new"
    assert await conn.fetchval("SELECT count(*) FROM users") == 2
    carol = await conn.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
    saved = await staff_client.post(
        f"/users/{user_id}", {**form_of(carol, full_name="Carol C"), "_then": "continue"}
    )
    assert saved.headers["location"] == f"/users/{user_id}/edit"
    assert await conn.fetchval("SELECT full_name FROM users WHERE id = $1", user_id) == "Carol C"
    form = await staff_client.get("/users/new")
    for label in ("Create user", "Save and continue editing", "Save and add another"):
        assert f">{label}</button>" in form.text


async def test_a_uniqueness_error_links_to_the_clashing_record(staff_client: LoggedIn, conn):
    alice = await make_user(conn, "alice")
    response = await staff_client.post(
        "/users", {"username": "alice2", "email": "ALICE@example.com"}
    )
    assert response.status_code == 422
    error = _field_error(response.text, "email")
    assert "Another user already has this email." in error
    assert f'<a href="/users/{alice["id"]}">Open that user</a>' in error
    # the check on leaving the field says the same, with the same link
    bob = await make_user(conn, "bob")
    checked = await staff_client.post(
        "/users/validate?field=username", {"username": "alice", "__key": str(bob["id"])}
    )
    assert f'href="/users/{alice["id"]}"' in checked.text
    # and an edit that clashes
    edited = await staff_client.post(f"/users/{bob['id']}", form_of(bob, username="alice"))
    assert edited.status_code == 422
    assert f'href="/users/{alice["id"]}"' in _field_error(edited.text, "username")


async def test_a_conflict_offers_every_choice_and_use_the_saved_version_writes_nothing(
    staff_client: LoggedIn, conn
):
    alice = await make_user(conn)
    await conn.execute("UPDATE users SET full_name = 'Theirs' WHERE id = $1", alice["id"])
    stale = await staff_client.post(f"/users/{alice['id']}", form_of(alice, full_name="Mine"))
    assert stale.status_code == 409
    notice = re.search(r'<div id="conflict".*?</table>', stale.text, re.S)
    assert notice and 'role="alert"' in notice.group(0) and "data-focus-first" in notice.group(0)
    text = notice.group(0)
    # the safe choice comes first (Enter presses it), then overwrite, then Cancel
    assert text.index("Use the saved version") < text.index("Overwrite with mine")
    assert text.index("Overwrite with mine") < text.index(">Cancel</a>")
    assert '<th scope="col" class="mine">Yours</th>' in text
    assert '<th scope="col" class="theirs">Saved meanwhile</th>' in text
    assert re.search(r'<tr class="differs">.*?Mine.*?Theirs', text, re.S)
    reload = await staff_client.post(
        f"/users/{alice['id']}", {**form_of(alice, full_name="Mine"), "_then": "reload"}
    )
    assert reload.status_code == 303
    assert reload.headers["location"] == f"/users/{alice['id']}/edit"
    assert await conn.fetchval("SELECT full_name FROM users WHERE id = $1", alice["id"]) == (
        "Theirs"
    )


async def test_an_inline_save_announces_itself(staff_client: LoggedIn, conn):
    alice = await make_user(conn)
    data = {
        "username": "alice",
        "email": "alice@example.com",
        "full_name": "Alice A",
        "is_active": "true",
        "version": str(alice["version"]),
    }
    saved = await staff_client.post(
        f"/users/{alice['id']}/inline", data, headers={"HX-Request": "true"}
    )
    assert saved.status_code == 200
    said = json.loads(saved.headers["HX-Trigger"])["announce"]
    assert said == {"message": "Saved alice.", "row": f"row-{alice['id']}"}


def test_counts_read_in_words() -> None:
    assert wording.counted(1, "user") == "1 user"
    assert wording.counted(3, "user") == "3 users"
    assert wording.counted(1204, "order item") == "1,204 order items"
    assert wording.counted(2, "category") == "2 categories"
    assert wording.counted(0, "match") == "0 matches"
    assert wording.plural("person", 2, "people") == "people"
