"""/staff: admins manage accounts; every write is audited in its own transaction."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from admin.staff import table as staff_table
from admin.staff.passwords import verify_password
from tests.conftest import LoggedIn, create_staff
from tests.snapshot import snapshot


async def audit_rows(conn: asyncpg.Connection, resource: str = "staff") -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT staff_username, action, resource_id, before, after FROM audit_log"
        " WHERE resource = $1 ORDER BY id",
        resource,
    )


async def test_admin_lists_staff(admin_client: LoggedIn, conn):
    await create_staff(conn, "clerk")
    page = await admin_client.get("/staff")
    assert page.status_code == 200
    assert 'data-username="clerk"' in page.text and 'data-username="boss"' in page.text


async def test_admin_creates_staff_with_an_audited_row(admin_client: LoggedIn, conn):
    response = await admin_client.post(
        "/staff", {"username": "newbie", "password": "a long password", "role": "staff"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/staff"
    row = await conn.fetchrow("SELECT * FROM staff WHERE username = 'newbie'")
    assert row["role"] == "staff" and row["is_active"]
    assert verify_password(row["password_hash"], "a long password")
    [entry] = await audit_rows(conn)
    assert entry["action"] == "create" and entry["staff_username"] == "boss"
    assert entry["resource_id"] == str(row["id"])
    assert entry["before"] is None
    assert entry["after"] == {"username": "newbie", "role": "staff", "is_active": True}
    assert "password" not in str(entry["after"]) and "argon2" not in str(entry["after"])


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"username": "", "password": "a long password"}, 422, "Enter a username."),
        ({"username": "ab", "password": "a long password"}, 422, "Use 3 to 50"),
        ({"username": "x" * 51, "password": "a long password"}, 422, "longer than 50"),
        ({"username": "Bad Name", "password": "a long password"}, 422, "Use 3 to 50"),
        ({"username": "tab\tname", "password": "a long password"}, 422, "control characters"),
        ({"username": "ok.name", "password": "short"}, 422, "at least 10"),
        ({"username": "ok.name", "password": "p" * 1025}, 422, "at most 1024"),
        ({"username": "ok.name", "password": "a long password", "role": "root"}, 422, "role"),
        ({"username": "boss", "password": "a long password"}, 409, "is taken"),
    ],
)
async def test_bad_staff_input_is_refused_without_writing(
    admin_client, conn, fields, status, message
):
    before = await snapshot(conn)
    response = await admin_client.post("/staff", fields)
    assert response.status_code == status
    assert message in response.text
    assert await snapshot(conn) == before


async def test_deactivation_ends_the_members_session_at_once(admin_client, staff_client, conn):
    assert (await staff_client.get("/")).status_code == 200
    response = await admin_client.post(
        f"/staff/{staff_client.staff_id}/active", {"active": "false"}
    )
    assert response.status_code == 303
    after = await staff_client.get("/")
    assert after.status_code == 303 and after.headers["location"].startswith("/login")
    [entry] = await audit_rows(conn)
    assert entry["action"] == "deactivate"
    assert entry["before"]["is_active"] is True and entry["after"]["is_active"] is False
    # reactivated, the member logs in again (the old cookie stays dead)
    await admin_client.post(f"/staff/{staff_client.staff_id}/active", {"active": "true"})
    assert (await staff_client.get("/")).status_code == 303
    assert (await audit_rows(conn))[-1]["action"] == "reactivate"


async def test_a_role_change_applies_on_the_next_request_without_logging_out(
    admin_client, staff_client, conn
):
    assert (await staff_client.get("/staff")).status_code == 403
    await admin_client.post(f"/staff/{staff_client.staff_id}/role", {"role": "admin"})
    assert (await staff_client.get("/staff")).status_code == 200
    await admin_client.post(f"/staff/{staff_client.staff_id}/role", {"role": "staff"})
    assert (await staff_client.get("/staff")).status_code == 403
    assert (await staff_client.get("/")).status_code == 200
    entries = await audit_rows(conn)
    assert [(e["before"]["role"], e["after"]["role"]) for e in entries] == [
        ("staff", "admin"),
        ("admin", "staff"),
    ]


async def test_a_password_reset_ends_the_members_sessions(admin_client, staff_client, conn):
    response = await admin_client.post(
        f"/staff/{staff_client.staff_id}/password", {"password": "brand new password"}
    )
    assert response.status_code == 303
    assert (await staff_client.get("/")).status_code == 303
    stored = await conn.fetchval(
        "SELECT password_hash FROM staff WHERE id = $1", staff_client.staff_id
    )
    assert verify_password(stored, "brand new password")
    [entry] = await audit_rows(conn)
    assert entry["action"] == "password_reset"
    assert "argon2" not in str(entry["before"]) + str(entry["after"])


async def test_bad_row_actions_write_nothing(admin_client, conn):
    before = await snapshot(conn)
    staff_id = admin_client.staff_id
    assert (
        await admin_client.post(f"/staff/{staff_id}/password", {"password": "short"})
    ).status_code == 422
    assert (
        await admin_client.post(f"/staff/{staff_id}/role", {"role": "owner"})
    ).status_code == 422
    assert (
        await admin_client.post(f"/staff/{staff_id}/active", {"active": "maybe"})
    ).status_code == 400
    assert (await admin_client.post("/staff/999/role", {"role": "staff"})).status_code == 404
    assert (await admin_client.post("/staff/abc/role", {"role": "staff"})).status_code == 404
    assert await snapshot(conn) == before


async def test_the_last_active_admin_cannot_be_demoted_or_deactivated(admin_client, conn):
    before = await snapshot(conn)
    demote = await admin_client.post(f"/staff/{admin_client.staff_id}/role", {"role": "staff"})
    assert demote.status_code == 409
    assert "last active admin" in demote.text
    deactivate = await admin_client.post(
        f"/staff/{admin_client.staff_id}/active", {"active": "false"}
    )
    assert deactivate.status_code == 409
    assert await snapshot(conn) == before
    # with a second active admin, the first may step down (and keeps working as staff)
    await create_staff(conn, "deputy", "admin")
    demote = await admin_client.post(f"/staff/{admin_client.staff_id}/role", {"role": "staff"})
    assert demote.status_code == 303
    assert (await admin_client.get("/staff")).status_code == 403


async def test_an_admin_resetting_their_own_password_keeps_this_session(admin_client, conn):
    response = await admin_client.post(
        f"/staff/{admin_client.staff_id}/password", {"password": "my new password"}
    )
    assert response.status_code == 303
    assert (await admin_client.get("/staff")).status_code == 200


async def test_two_concurrent_demotions_cannot_both_pass(pool, conn):
    first = await create_staff(conn, "admin-a", "admin")
    second = await create_staff(conn, "admin-b", "admin")
    async with pool.acquire() as one, pool.acquire() as two:
        tx_one = one.transaction()
        await tx_one.start()
        await staff_table.set_role(one, first, "staff")

        async def demote_second() -> None:
            async with two.transaction():
                await staff_table.set_role(two, second, "staff")

        blocked = asyncio.create_task(demote_second())
        # wait until the second demotion is waiting on the first one's row locks (found by
        # its wait, not its pid: through a pooler the client never learns the server's pid)
        for _ in range(200):
            waiting = await conn.fetchval(
                "SELECT count(*) > 0 FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if waiting:
                break
            await asyncio.sleep(0.01)
        assert waiting
        await tx_one.commit()
        with pytest.raises(staff_table.LastActiveAdmin):
            await blocked
    roles = await conn.fetch("SELECT username, role FROM staff ORDER BY id")
    assert [(r["username"], r["role"]) for r in roles] == [
        ("admin-a", "staff"),
        ("admin-b", "admin"),
    ]


async def test_staff_role_cannot_reach_staff_management(staff_client, conn):
    before = await snapshot(conn)
    assert (await staff_client.get("/staff")).status_code == 403
    response = await staff_client.post(
        "/staff", {"username": "sneaky", "password": "a long password", "role": "admin"}
    )
    assert response.status_code == 403
    assert await snapshot(conn) == before
