"""A record's history in plain words, and an admin's one-click restore of an earlier version:
users, orders and a table with a composite key, against the real database and HTTP stack."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg

from admin.audit import Entry
from admin.resources import history
from admin.resources.registry import Registry
from tests.conftest import LoggedIn

ENTRY = re.compile(r'<li id="entry-(\d+)">(.*?)</li>\s*(?=<li id="entry-|</ol>)', re.S)
TAG = re.compile(r"<[^>]+>")


def entries(page: str) -> list[tuple[int, str]]:
    """(audit id, the entry as plain text) in page order."""
    return [
        (int(m.group(1)), " ".join(html.unescape(TAG.sub(" ", m.group(2))).split()))
        for m in ENTRY.finditer(page)
    ]


def restore_buttons(page: str) -> list[str]:
    return [html.unescape(b) for b in re.findall(r'<button type="submit">([^<]*)</button>', page)]


async def make_user(admin: LoggedIn, conn: asyncpg.Connection, username: str = "alice") -> int:
    response = await admin.post(
        "/users",
        {
            "username": username,
            "email": f"{username}@old.io",
            "full_name": "Alice Old",
            "is_active": "true",
        },
    )
    assert response.status_code == 303, response.text
    user_id: int = await conn.fetchval("SELECT id FROM users WHERE username = $1", username)
    return user_id


async def edit_user(client: LoggedIn, conn: asyncpg.Connection, uid: int, **changes: str) -> None:
    row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", uid)
    data = {
        "username": row["username"],
        "email": row["email"],
        "full_name": row["full_name"],
        "is_active": "true" if row["is_active"] else "false",
        "version": str(row["version"]),
        **changes,
    }
    response = await client.post(f"/users/{uid}", data)
    assert response.status_code == 303, response.text


async def audit_ids(conn: asyncpg.Connection, resource: str, action: str) -> list[int]:
    rows = await conn.fetch(
        "SELECT id FROM audit_log WHERE resource = $1 AND action = $2 ORDER BY id",
        resource,
        action,
    )
    return [r["id"] for r in rows]


async def version_of(conn: asyncpg.Connection, table: str, uid: int) -> str:
    return str(await conn.fetchval(f"SELECT version FROM {table} WHERE id = $1", uid))


# ---- reading


async def test_history_in_plain_words_newest_first_without_bookkeeping(
    admin_client: LoggedIn, staff_client: LoggedIn, conn
) -> None:
    uid = await make_user(admin_client, conn)
    await edit_user(staff_client, conn, uid, email="alice@new.io")
    await staff_client.post(
        "/users/bulk",
        {"action": "deactivate", "scope": "selected", "ids": str(uid), "confirm": "yes"},
    )
    response = await staff_client.get(f"/users/{uid}/history")
    assert response.status_code == 200
    shown = entries(response.text)
    assert [i for i, _ in shown] == sorted((i for i, _ in shown), reverse=True)
    bulk, update, create = (text for _, text in shown)
    assert "clerk deactivate (bulk action)" in bulk and "Active: yes → no" in bulk
    assert "clerk updated" in update and "Email: alice@old.io → alice@new.io" in update
    assert "boss created" in create and "Full name: Alice Old" in create
    assert create.index("Username:") < create.index("Email:") < create.index("Full name:")
    for text in (bulk, update, create):
        assert "Version" not in text and "Updated" not in text and "Created:" not in text
    assert re.search(r'<time datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>', response.text)
    # staff may read the history but only admins restore
    assert restore_buttons(response.text) == []
    assert "Only admins may restore" in response.text
    fragment = await staff_client.get(f"/users/{uid}/history", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and entries(fragment.text) == shown


async def test_times_and_values_in_the_staff_members_zone(conn) -> None:
    table = (await Registry(["public"]).current(conn)).get("users")
    assert table is not None
    entry = Entry(
        id=1,
        at=datetime(2024, 7, 1, 12, 0, tzinfo=UTC),
        staff_id=None,
        staff_username="boss",
        action="update",
        resource="users",
        resource_id="1",
        before={"created_at": "2024-01-01T00:00:00+00:00", "email": "a@x.io", "version": 1},
        after={"created_at": "2024-01-01T00:00:00+00:00", "email": "b@x.io", "version": 2},
        ip=None,
    )
    view = history.describe(table, entry, ZoneInfo("Asia/Tokyo"), None)
    assert view.when == "2024-07-01 21:00 JST"
    assert [(c.label, c.old, c.new) for c in view.changes] == [("Email", "a@x.io", "b@x.io")]
    stamp = table.by_name["created_at"]
    assert history.words(stamp, "2024-01-01T00:00:00+00:00", ZoneInfo("Europe/Paris")) == (
        "2024-01-01 01:00 CET"
    )


async def test_history_page_uses_the_staff_members_zone_when_set(
    staff_client: LoggedIn, admin_client: LoggedIn, conn
) -> None:
    uid = await make_user(admin_client, conn)
    has_zone = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns"
        " WHERE table_name = 'staff' AND column_name = 'time_zone')"
    )
    zone, abbreviation = ("UTC", "UTC")
    if has_zone:
        await conn.execute("UPDATE staff SET time_zone = 'Asia/Tokyo' WHERE username = 'clerk'")
        zone, abbreviation = ("Asia/Tokyo", "JST")
    response = await staff_client.get(f"/users/{uid}/history")
    at = await conn.fetchval("SELECT at FROM audit_log WHERE resource = 'users'")
    local = at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
    assert f">{local} {abbreviation}</time>" in response.text


async def test_history_pages_by_entry_id(staff_client: LoggedIn, admin_client: LoggedIn, conn):
    uid = await make_user(admin_client, conn)
    await conn.execute(
        """
        INSERT INTO audit_log (staff_username, action, resource, resource_id, before, after)
        SELECT 'clerk', 'update', 'users', $1, jsonb_build_object('full_name', 'n' || g),
               jsonb_build_object('full_name', 'n' || (g + 1))
        FROM generate_series(1, 60) AS g
        """,
        str(uid),
    )
    first = await staff_client.get(f"/users/{uid}/history")
    shown = entries(first.text)
    assert len(shown) == 50 and "Full name: n60 → n61" in shown[0][1]
    older = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert older is not None
    second = await staff_client.get(html.unescape(older.group(1)))
    rest = entries(second.text)
    assert len(rest) == 11 and rest[-1][0] < shown[-1][0] and "boss created" in rest[-1][1]
    assert 'rel="next"' not in second.text
    bad = await staff_client.get(f"/users/{uid}/history?before=abc")
    assert bad.status_code == 400


async def test_history_of_a_deleted_record_stays_readable(admin_client: LoggedIn, conn) -> None:
    uid = await make_user(admin_client, conn)
    await edit_user(admin_client, conn, uid, full_name="Alice New")
    version = await version_of(conn, "users", uid)
    deleted = await admin_client.post(f"/users/{uid}/delete", {"version": version})
    assert deleted.status_code == 303
    response = await admin_client.get(f"/users/{uid}/history")
    assert response.status_code == 200
    texts = [t for _, t in entries(response.text)]
    assert "boss deleted" in texts[0] and "Email: alice@old.io" in texts[0]
    assert "Full name: Alice Old → Alice New" in texts[1]
    assert "has been deleted" in response.text and "not supported" in response.text
    assert restore_buttons(response.text) == []
    (update,) = await audit_ids(conn, "users", "update")
    refused = await admin_client.post(
        f"/users/{uid}/revert", {"entry": str(update), "version": version}
    )
    assert refused.status_code == 404 and "deleted" in refused.text
    assert await audit_ids(conn, "users", "revert") == []
    missing = await admin_client.get("/users/987654/history")
    assert missing.status_code == 404


# ---- restoring


async def test_revert_restores_email_and_full_name_audited_and_bumps_version(
    admin_client: LoggedIn, conn
) -> None:
    uid = await make_user(admin_client, conn)
    await edit_user(admin_client, conn, uid, email="alice@new.io", full_name="Alice New")
    (update,) = await audit_ids(conn, "users", "update")
    page = await admin_client.get(f"/users/{uid}/history")
    assert "Restore Email and Full name as before this change" in restore_buttons(page.text)
    version = await version_of(conn, "users", uid)
    response = await admin_client.post(
        f"/users/{uid}/revert", {"entry": str(update), "version": version}
    )
    assert response.status_code == 303 and response.headers["location"] == f"/users/{uid}"
    row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", uid)
    assert (row["email"], row["full_name"]) == ("alice@old.io", "Alice Old")
    assert row["version"] == int(version) + 1
    entry = await conn.fetchrow("SELECT * FROM audit_log WHERE action = 'revert'")
    assert entry["resource"] == "users" and entry["resource_id"] == str(uid)
    assert entry["before"]["email"] == "alice@new.io" and entry["after"]["email"] == "alice@old.io"
    assert entry["after"]["__restored"] == {"entry": update, "state": "before"}
    assert entry["staff_username"] == "boss"
    page = await admin_client.get(f"/users/{uid}/history")
    newest = entries(page.text)[0][1]
    assert "boss restored an earlier version" in newest
    assert f"before entry {update}" in newest and "Email: alice@new.io → alice@old.io" in newest
    # the state right after the change brings the new values back
    redo = await admin_client.post(
        f"/users/{uid}/revert",
        {"entry": str(update), "state": "after", "version": str(row["version"])},
    )
    assert redo.status_code == 303
    assert await conn.fetchval("SELECT email FROM users WHERE id = $1", uid) == "alice@new.io"


async def test_revert_with_nothing_to_change_writes_nothing(admin_client: LoggedIn, conn) -> None:
    uid = await make_user(admin_client, conn)
    (create,) = await audit_ids(conn, "users", "create")
    page = await admin_client.get(f"/users/{uid}/history")
    assert restore_buttons(page.text) == [] and "has these values now" in page.text
    version = await version_of(conn, "users", uid)
    response = await admin_client.post(
        f"/users/{uid}/revert", {"entry": str(create), "version": version}
    )
    assert response.status_code == 303
    assert await version_of(conn, "users", uid) == version
    assert await audit_ids(conn, "users", "revert") == []


async def test_revert_with_a_stale_version_is_409_and_changes_nothing(
    admin_client: LoggedIn, conn
) -> None:
    uid = await make_user(admin_client, conn)
    stale = await version_of(conn, "users", uid)
    await edit_user(admin_client, conn, uid, email="alice@new.io")
    (update,) = await audit_ids(conn, "users", "update")
    response = await admin_client.post(
        f"/users/{uid}/revert", {"entry": str(update), "version": stale}
    )
    assert response.status_code == 409
    assert "Nothing was restored" in response.text and "Saved now" in response.text
    assert re.search(
        r'<th scope="row">Email</th><td class="mine">.*?alice@old.io</td>'
        r'<td class="theirs">.*?alice@new.io</td>',
        response.text,
    )
    assert await conn.fetchval("SELECT email FROM users WHERE id = $1", uid) == "alice@new.io"
    assert await audit_ids(conn, "users", "revert") == []
    # the page now carries the current version: restoring again is a knowing choice
    current = await version_of(conn, "users", uid)
    assert f'name="version" value="{current}"' in response.text


async def test_revert_by_staff_is_403_and_writes_nothing(
    admin_client: LoggedIn, staff_client: LoggedIn, conn
) -> None:
    uid = await make_user(admin_client, conn)
    await edit_user(admin_client, conn, uid, email="alice@new.io")
    (update,) = await audit_ids(conn, "users", "update")
    before = await conn.fetchval("SELECT count(*) FROM audit_log")
    version = await version_of(conn, "users", uid)
    response = await staff_client.post(
        f"/users/{uid}/revert", {"entry": str(update), "version": version}
    )
    assert response.status_code == 403
    assert await conn.fetchval("SELECT email FROM users WHERE id = $1", uid) == "alice@new.io"
    assert await conn.fetchval("SELECT count(*) FROM audit_log") == before
    no_csrf = await admin_client.http.post(
        f"/users/{uid}/revert", data={"entry": str(update), "version": version}
    )
    assert no_csrf.status_code == 403
    assert await conn.fetchval("SELECT count(*) FROM audit_log") == before


async def test_revert_refuses_bad_entries(admin_client: LoggedIn, conn) -> None:
    alice = await make_user(admin_client, conn, "alice")
    bob = await make_user(admin_client, conn, "bob")
    await edit_user(admin_client, conn, bob, email="bob@new.io")
    (bobs,) = await audit_ids(conn, "users", "update")
    version = await version_of(conn, "users", alice)
    other = await admin_client.post(
        f"/users/{alice}/revert", {"entry": str(bobs), "version": version}
    )
    assert other.status_code == 404
    for data in (
        {"entry": "abc", "version": version},
        {"entry": str(bobs)},
        {"entry": str(bobs), "version": version, "state": "sideways"},
    ):
        response = await admin_client.post(f"/users/{bob}/revert", data)
        assert response.status_code == 400, data
    create = (await audit_ids(conn, "users", "create"))[0]  # alice's
    nothing_before = await admin_client.post(
        f"/users/{alice}/revert", {"entry": str(create), "state": "before", "version": version}
    )
    assert nothing_before.status_code == 400
    assert await audit_ids(conn, "users", "revert") == []
    assert await conn.fetchval("SELECT email FROM users WHERE id = $1", bob) == "bob@new.io"


async def test_revert_refused_by_a_constraint_is_422(admin_client: LoggedIn, conn) -> None:
    alice = await make_user(admin_client, conn, "alice")
    await edit_user(admin_client, conn, alice, email="alice@new.io")
    (update,) = await audit_ids(conn, "users", "update")
    # someone else took alice's old address meanwhile
    await make_user(admin_client, conn, "carol")
    await conn.execute("UPDATE users SET email = 'alice@old.io' WHERE username = 'carol'")
    version = await version_of(conn, "users", alice)
    response = await admin_client.post(
        f"/users/{alice}/revert", {"entry": str(update), "version": version}
    )
    assert response.status_code == 422
    assert "Nothing was restored. Email: Another user already has this email." in response.text
    assert await conn.fetchval("SELECT email FROM users WHERE id = $1", alice) == "alice@new.io"
    assert await audit_ids(conn, "users", "revert") == []


async def test_orders_history_and_revert_of_total(
    staff_client: LoggedIn, admin_client: LoggedIn, conn
) -> None:
    uid = await conn.fetchval(
        "INSERT INTO users (username, email, full_name) VALUES ('buyer', 'b@x.io', 'B')"
        " RETURNING id"
    )
    oid = await conn.fetchval(
        "INSERT INTO orders (user_id, status, total) VALUES ($1, 'pending', 10.00) RETURNING id",
        uid,
    )
    version = await version_of(conn, "orders", oid)
    paid = await staff_client.post(f"/orders/{oid}/status", {"status": "paid", "version": version})
    assert paid.status_code == 303
    version = await version_of(conn, "orders", oid)
    edit = await staff_client.post(
        f"/orders/{oid}", {"status": "paid", "total": "12.50", "version": version}
    )
    assert edit.status_code == 303
    page = await admin_client.get(f"/orders/{oid}/history")
    update, status = (t for _, t in entries(page.text))
    assert "clerk updated" in update and "Total: 10.00 → 12.50" in update
    assert "clerk changed status" in status and "Status: pending → paid" in status
    assert "Restore Total as before this change" in restore_buttons(page.text)
    (update_id,) = await audit_ids(conn, "orders", "update")
    version = await version_of(conn, "orders", oid)
    response = await admin_client.post(
        f"/orders/{oid}/revert", {"entry": str(update_id), "version": version}
    )
    assert response.status_code == 303
    row = await conn.fetchrow("SELECT status, total, version FROM orders WHERE id = $1", oid)
    assert row["total"] == Decimal("10.00") and row["status"] == "paid"
    assert row["version"] == int(version) + 1
    (set_status,) = await audit_ids(conn, "orders", "set_status")
    back = await admin_client.post(
        f"/orders/{oid}/revert", {"entry": str(set_status), "version": str(row["version"])}
    )
    assert back.status_code == 303
    assert await conn.fetchval("SELECT status FROM orders WHERE id = $1", oid) == "pending"
    assert len(await audit_ids(conn, "orders", "revert")) == 2


async def test_composite_key_history_and_revert(admin_client: LoggedIn, conn) -> None:
    await conn.execute("CREATE TABLE pairs (a int, b text, note text, PRIMARY KEY (a, b))")
    refreshed = await admin_client.post("/tables/refresh")
    assert refreshed.status_code == 303
    created = await admin_client.post("/pairs", {"a": "1", "b": "x y", "note": "first"})
    assert created.status_code == 303, created.text
    key = "1,x~20y"
    assert created.headers["location"] == f"/pairs/{key}"
    xmin = await conn.fetchval("SELECT xmin::text FROM pairs")
    edited = await admin_client.post(
        f"/pairs/{key}", {"a": "1", "b": "x y", "note": "second", "version": xmin}
    )
    assert edited.status_code == 303, edited.text
    page = await admin_client.get(f"/pairs/{key}/history")
    assert page.status_code == 200
    update, create = (t for _, t in entries(page.text))
    assert "Note: first → second" in update and "Note: first" in create
    (update_id,) = await audit_ids(conn, "pairs", "update")
    stale = await admin_client.post(
        f"/pairs/{key}/revert", {"entry": str(update_id), "version": xmin}
    )
    assert stale.status_code == 409
    xmin = await conn.fetchval("SELECT xmin::text FROM pairs")
    response = await admin_client.post(
        f"/pairs/{key}/revert", {"entry": str(update_id), "version": xmin}
    )
    assert response.status_code == 303
    assert await conn.fetchval("SELECT note FROM pairs") == "first"
    entry = await conn.fetchrow("SELECT * FROM audit_log WHERE action = 'revert'")
    assert entry["resource"] == "pairs" and entry["resource_id"] == key
    # the same record through a differently spelt key segment
    spelt = await admin_client.get("/pairs/01,x~20y/history")
    assert [t for _, t in entries(spelt.text)] == [
        t for _, t in entries((await admin_client.get(f"/pairs/{key}/history")).text)
    ]
