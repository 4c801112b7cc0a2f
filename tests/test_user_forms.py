"""Users: create, edit with version checks, conflicts, delete, inline edit, bulk, validation."""

from __future__ import annotations

import re

import asyncpg
import httpx
import pytest

from tests.conftest import LoggedIn, log_in


async def make_user(
    conn: asyncpg.Connection, username: str = "alice", **kw: object
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        "INSERT INTO users (username, email, full_name) VALUES ($1, $2, $3) RETURNING *",
        username,
        kw.get("email", f"{username}@example.com"),
        kw.get("full_name", username.title()),
    )
    return row


def form_of(row: asyncpg.Record, **changes: str) -> dict[str, str]:
    data = {
        "username": row["username"],
        "email": row["email"],
        "full_name": row["full_name"],
        "version": str(row["version"]),
    }
    if row["is_active"]:
        data["is_active"] = "true"
    data.update(changes)
    return data


async def audit_rows(conn: asyncpg.Connection, action: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM audit_log WHERE resource = 'users' AND action = $1 ORDER BY id", action
    )


async def test_create_user_audited(staff_client: LoggedIn, conn) -> None:
    response = await staff_client.post(
        "/users",
        {"username": "new.user", "email": "New@Example.com", "full_name": "N", "is_active": "true"},
    )
    assert response.status_code == 303
    row = await conn.fetchrow("SELECT * FROM users WHERE username = 'new.user'")
    assert response.headers["location"] == f"/users/{row['id']}"
    (entry,) = await audit_rows(conn, "create")
    assert (
        entry["after"]["email"] == "New@Example.com" and entry["staff_id"] == staff_client.staff_id
    )
    page = await staff_client.get(f"/users/{row['id']}")
    # the audit log is for admins: a staff member gets no link to a page that would be a 403
    assert f"/audit?resource=users&amp;resource_id={row['id']}" not in page.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "ab"),
        ("username", "Upper"),
        ("username", "x" * 51),
        ("username", "has space"),
        ("email", "not-an-email"),
        ("email", ""),
        ("full_name", "y" * 201),
    ],
)
async def test_create_invalid_is_422_with_input_kept(
    staff_client: LoggedIn, conn, field: str, value: str
) -> None:
    data = {"username": "okname", "email": "ok@example.com", "full_name": "<i>kept</i>"}
    data[field] = value
    response = await staff_client.post("/users", data)
    assert response.status_code == 422
    assert re.search(rf'<p id="{field}-error" class="field-error"[^>]*>[^<]+</p>', response.text)
    assert "&lt;i&gt;kept&lt;/i&gt;" in response.text or field == "full_name"
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_uniqueness_maps_to_field_errors(staff_client: LoggedIn, conn) -> None:
    await make_user(conn, "alice", email="Alice@Example.com")
    response = await staff_client.post(
        "/users", {"username": "alice", "email": "other@example.com"}
    )
    assert response.status_code == 422 and "Another user already has this username" in response.text
    response = await staff_client.post("/users", {"username": "bob", "email": "alice@EXAMPLE.com"})
    assert response.status_code == 422 and "Another user already has this email" in response.text
    assert await conn.fetchval("SELECT count(*) FROM users") == 1


async def test_validate_endpoint(staff_client: LoggedIn, conn) -> None:
    alice = await make_user(conn, "alice")
    taken = await staff_client.post(
        "/users/validate?field=username", {"username": "alice"}, headers={"HX-Request": "true"}
    )
    assert (
        taken.status_code == 200
        and "already has this username" in taken.text
        and 'id="username-error"' in taken.text
    )
    own = await staff_client.post(
        "/users/validate?field=email",
        {"email": "ALICE@example.com", "__key": str(alice["id"])},
    )
    assert re.search(r'id="email-error"[^>]*></p>', own.text)
    other = await staff_client.post("/users/validate?field=email", {"email": "ALICE@example.com"})
    assert "Another user" in other.text
    bad = await staff_client.post("/users/validate?field=version", {"version": "1"})
    assert bad.status_code == 400


async def test_edit_and_update(staff_client: LoggedIn, conn) -> None:
    alice = await make_user(conn)
    page = await staff_client.get(f"/users/{alice['id']}/edit")
    assert f'name="version" value="{alice["version"]}"' in page.text
    response = await staff_client.post(
        f"/users/{alice['id']}", form_of(alice, full_name="Alice Liddell")
    )
    assert response.status_code == 303
    row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", alice["id"])
    assert row["full_name"] == "Alice Liddell" and row["version"] == alice["version"] + 1
    (entry,) = await audit_rows(conn, "update")
    assert (
        entry["before"]["full_name"] == "Alice" and entry["after"]["full_name"] == "Alice Liddell"
    )


async def test_two_clients_editing_the_same_user(app, staff_client: LoggedIn, conn) -> None:
    from tests.conftest import create_staff

    alice = await make_user(conn)
    await create_staff(conn, "second")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        token = await log_in(http, "second")
        first = await http.post(
            f"/users/{alice['id']}",
            data={**form_of(alice, full_name="From first"), "csrf_token": token},
        )
        assert first.status_code == 303
    stale = await staff_client.post(
        f"/users/{alice['id']}", form_of(alice, full_name="From second")
    )
    assert stale.status_code == 409
    assert "From first" in stale.text and "From second" in stale.text
    assert "Overwrite with mine" in stale.text
    assert f'name="version" value="{alice["version"] + 1}"' in stale.text
    row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", alice["id"])
    assert row["full_name"] == "From first"
    # overwrite knowingly: the form now carries the newer version
    again = await staff_client.post(
        f"/users/{alice['id']}",
        form_of(alice, full_name="From second", version=str(alice["version"] + 1)),
    )
    assert again.status_code == 303
    assert await conn.fetchval("SELECT full_name FROM users WHERE id = $1", alice["id"]) == (
        "From second"
    )


async def test_update_without_version_is_400(staff_client: LoggedIn, conn) -> None:
    alice = await make_user(conn)
    data = form_of(alice, full_name="X")
    del data["version"]
    response = await staff_client.post(f"/users/{alice['id']}", data)
    assert response.status_code == 400
    assert await conn.fetchval("SELECT full_name FROM users") == "Alice"


@pytest.mark.parametrize(
    "path",
    [
        "/users/abc",
        "/users/1e3",
        "/users/99999999999999999999",
        "/users/abc/edit",
    ],
)
async def test_malformed_id_is_400(staff_client: LoggedIn, path: str) -> None:
    response = await staff_client.get(path)
    assert response.status_code == 400
    assert "not a valid id" in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/users/999",
        "/users/0",
        "/users/-1",
        "/users/999/edit",
        "/users/999/delete",
        "/users/999/inline",
    ],
)
async def test_unknown_id_is_404(staff_client: LoggedIn, path: str) -> None:
    response = await staff_client.get(path)
    assert response.status_code == 404
    assert "There is no user " in response.text


async def test_delete_with_confirm_page(staff_client: LoggedIn, conn) -> None:
    alice = await make_user(conn)
    confirm = await staff_client.get(f"/users/{alice['id']}/delete")
    assert confirm.status_code == 200 and 'action="/users/' in confirm.text
    response = await staff_client.post(
        f"/users/{alice['id']}/delete", {"version": str(alice["version"])}
    )
    assert response.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM users") == 0
    (entry,) = await audit_rows(conn, "delete")
    assert entry["before"]["username"] == "alice" and entry["after"] is None


async def test_delete_user_with_orders_is_refused(staff_client: LoggedIn, conn) -> None:
    alice = await make_user(conn)
    await conn.execute("INSERT INTO orders (user_id, total) VALUES ($1, 10)", alice["id"])
    response = await staff_client.post(f"/users/{alice['id']}/delete", {})
    assert response.status_code == 409 and "cannot be deleted" in response.text
    htmx = await staff_client.http.delete(
        f"/users/{alice['id']}", headers={"HX-Request": "true", "X-CSRF-Token": staff_client.csrf}
    )
    assert htmx.status_code == 409 and "order" in htmx.text
    assert await conn.fetchval("SELECT count(*) FROM users") == 1
    assert await audit_rows(conn, "delete") == []


async def test_hx_delete_removes_row(staff_client: LoggedIn, conn) -> None:
    alice = await make_user(conn)
    response = await staff_client.http.delete(
        f"/users/{alice['id']}?version={alice['version']}",
        headers={
            "HX-Request": "true",
            "HX-Target": f"row-{alice['id']}",
            "X-CSRF-Token": staff_client.csrf,
        },
    )
    assert response.status_code == 200 and response.text == ""
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_delete_needs_csrf(staff_client: LoggedIn, conn) -> None:
    alice = await make_user(conn)
    response = await staff_client.http.post(f"/users/{alice['id']}/delete", data={})
    assert response.status_code == 403
    assert await conn.fetchval("SELECT count(*) FROM users") == 1


async def test_inline_edit_save_conflict_and_cancel(staff_client: LoggedIn, conn) -> None:
    alice = await make_user(conn)
    hx = {"HX-Request": "true"}
    editor = await staff_client.get(f"/users/{alice['id']}/inline", headers=hx)
    assert "data-inline-edit" in editor.text and 'name="version"' in editor.text
    saved = await staff_client.post(
        f"/users/{alice['id']}/inline", form_of(alice, email="alice@new.example"), headers=hx
    )
    assert saved.status_code == 200 and "alice@new.example" in saved.text
    assert "data-href" in saved.text
    stale = await staff_client.post(
        f"/users/{alice['id']}/inline", form_of(alice, email="stale@x.example"), headers=hx
    )
    assert stale.status_code == 409
    assert "Saved meanwhile" in stale.text and "alice@new.example" in stale.text
    assert await conn.fetchval("SELECT email FROM users") == "alice@new.example"
    invalid = await staff_client.post(
        f"/users/{alice['id']}/inline",
        form_of(alice, username="NO", version=str(alice["version"] + 1)),
        headers=hx,
    )
    assert invalid.status_code == 422 and 'value="NO"' in invalid.text
    row = await staff_client.get(f"/users/{alice['id']}/row", headers=hx)
    assert row.status_code == 200 and "data-href" in row.text


async def test_bulk_on_selected_rows_with_confirm(staff_client: LoggedIn, conn) -> None:
    rows = [await make_user(conn, name) for name in ("aaa", "bbb", "ccc")]
    ids = [str(rows[0]["id"]), str(rows[1]["id"])]
    confirm = await staff_client.post(
        "/users/bulk", {"action": "deactivate", "scope": "selected", "ids": ids}
    )
    assert confirm.status_code == 200 and "Deactivate: 2 users" in confirm.text
    assert await conn.fetchval("SELECT count(*) FROM users WHERE NOT is_active") == 0
    done = await staff_client.post(
        "/users/bulk", {"action": "deactivate", "scope": "selected", "ids": ids, "confirm": "yes"}
    )
    assert done.status_code == 303
    inactive = await conn.fetch("SELECT id FROM users WHERE NOT is_active ORDER BY id")
    assert [str(r["id"]) for r in inactive] == ids
    entries = await audit_rows(conn, "bulk_deactivate")
    assert sorted(e["resource_id"] for e in entries) == sorted(ids)
    assert all(e["before"]["is_active"] and not e["after"]["is_active"] for e in entries)


async def test_bulk_on_everything_matching_the_filter(staff_client: LoggedIn, conn) -> None:
    for name in ("smith1", "smith2", "jones"):
        await make_user(conn, name)
    done = await staff_client.post(
        "/users/bulk", {"action": "deactivate", "scope": "all", "q": "SMITH", "confirm": "yes"}
    )
    assert done.status_code == 303
    names = await conn.fetch("SELECT username FROM users WHERE NOT is_active ORDER BY 1")
    assert [r["username"] for r in names] == ["smith1", "smith2"]
    await staff_client.post(
        "/users/bulk", {"action": "delete", "scope": "all", "active": "false", "confirm": "yes"}
    )
    assert [r["username"] for r in await conn.fetch("SELECT username FROM users")] == ["jones"]
    assert len(await audit_rows(conn, "bulk_delete")) == 2


async def test_bulk_delete_refused_when_a_user_has_orders(staff_client: LoggedIn, conn) -> None:
    a, b = await make_user(conn, "aaa"), await make_user(conn, "bbb")
    await conn.execute("INSERT INTO orders (user_id, total) VALUES ($1, 5)", b["id"])
    done = await staff_client.post(
        "/users/bulk",
        {
            "action": "delete",
            "scope": "selected",
            "ids": [str(a["id"]), str(b["id"])],
            "confirm": "yes",
        },
    )
    assert done.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM users") == 2
    assert await audit_rows(conn, "bulk_delete") == []
    page = await staff_client.get("/users")
    assert "Nothing was deleted" in page.text


@pytest.mark.parametrize(
    "data",
    [
        {"action": "drop", "scope": "all"},
        {"action": "activate", "scope": "selected", "ids": "1; DELETE FROM users"},
        {"action": "activate", "scope": "all", "active": "sometimes"},
    ],
)
async def test_bad_bulk_requests_are_400(staff_client: LoggedIn, conn, data) -> None:
    await make_user(conn)
    response = await staff_client.post("/users/bulk", {**data, "confirm": "yes"})
    assert response.status_code == 400
    assert await conn.fetchval("SELECT count(*) FROM users WHERE is_active") == 1
