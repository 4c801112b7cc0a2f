"""A shared view outlives its owner's account ("shared by a former staff member"); a private
one goes with it. An admin removes any shared view; nobody else removes another's."""

from __future__ import annotations

import asyncpg
import httpx

from tests.conftest import LoggedIn, create_staff, log_in


async def test_shared_views_survive_their_owner_and_admins_remove_them(
    app, staff_client: LoggedIn, admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    leaver_id = await create_staff(conn, "leaver")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        token = await log_in(http, "leaver")
        for name, shared in (("For everyone", "1"), ("Mine only", "")):
            data = {"csrf_token": token, "name": name, "query": "q=x", "shared": shared}
            assert (await http.post("/users/views", data=data)).status_code == 303
    await conn.execute("DELETE FROM staff WHERE id = $1", leaver_id)
    kept = await conn.fetch("SELECT name, staff_id FROM saved_views ORDER BY name")
    assert [(r["name"], r["staff_id"]) for r in kept] == [("For everyone", None)]
    listed = await staff_client.get("/users/views")
    assert "For everyone" in listed.text and "shared by a former staff member" in listed.text
    assert "Remove the view For everyone" not in listed.text
    view_id = await conn.fetchval("SELECT id FROM saved_views")
    assert (await staff_client.post(f"/users/views/{view_id}/delete")).status_code == 404
    # an admin sees the remove button on any shared view, and removes it
    assert "Remove the view For everyone" in (await admin_client.get("/users/views")).text
    removed = await admin_client.post(f"/users/views/{view_id}/delete")
    assert removed.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM saved_views") == 0


async def test_an_admin_removes_a_colleagues_shared_view_but_not_a_private_one(
    staff_client: LoggedIn, admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    await staff_client.post("/users/views", {"name": "Shared", "query": "", "shared": "1"})
    await staff_client.post("/users/views", {"name": "Private", "query": "q=a"})
    ids = dict(await conn.fetch("SELECT name, id FROM saved_views"))
    assert (await admin_client.post(f"/users/views/{ids['Private']}/delete")).status_code == 404
    assert (await admin_client.post(f"/users/views/{ids['Shared']}/delete")).status_code == 303
    assert [r["name"] for r in await conn.fetch("SELECT name FROM saved_views")] == ["Private"]
    # an owner-less view must be shared
    try:
        await conn.execute("UPDATE saved_views SET staff_id = NULL")
    except asyncpg.CheckViolationError:
        pass
    else:
        raise AssertionError("a private view without an owner was accepted")
