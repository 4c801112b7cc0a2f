"""POST /<table>/<key>/presence: who else has a record's edit form open."""

from __future__ import annotations

import asyncpg

from tests.conftest import LoggedIn


async def _ping(client: LoggedIn, url: str) -> list[str]:
    response = await client.http.post(url, headers={"X-CSRF-Token": client.csrf})
    assert response.status_code == 200, response.text
    editing: list[str] = response.json()["editing"]
    return editing


async def test_editors_see_each_other_until_one_leaves_or_goes_quiet(
    staff_client: LoggedIn, admin_client: LoggedIn, conn: asyncpg.Connection
):
    tea = await conn.fetchval("INSERT INTO categories (name) VALUES ('Tea') RETURNING id")
    url = f"/categories/{tea}/presence"
    assert await _ping(staff_client, url) == []
    assert await _ping(admin_client, url) == ["clerk"]
    assert await _ping(staff_client, url) == ["boss"]
    # another record, and the same one written another way, are told apart / the same
    other = await conn.fetchval("INSERT INTO categories (name) VALUES ('Cups') RETURNING id")
    assert await _ping(admin_client, f"/categories/{other}/presence") == []
    assert await _ping(admin_client, f"/categories/0{tea}/presence") == ["clerk"]
    # leaving
    gone = await admin_client.http.post(
        url + "?gone=1", headers={"X-CSRF-Token": admin_client.csrf}
    )
    assert gone.status_code == 200
    assert await _ping(staff_client, url) == []
    # a form that stopped saying so drops out
    await _ping(admin_client, url)
    await conn.execute("UPDATE live_presence SET seen_at = now() - interval '1 minute'")
    assert await _ping(staff_client, url) == []
    pruned = await conn.fetchval(
        "SELECT count(*) FROM live_presence WHERE staff_id = $1 AND key = $2",
        admin_client.staff_id,
        str(tea),
    )
    assert pruned == 0


async def test_presence_needs_csrf_a_real_key_and_the_right_to_edit(
    staff_client: LoggedIn, conn: asyncpg.Connection
):
    tea = await conn.fetchval("INSERT INTO categories (name) VALUES ('Tea') RETURNING id")
    refused = await staff_client.http.post(f"/categories/{tea}/presence")
    assert refused.status_code == 403
    bad = await staff_client.http.post(
        "/categories/tea/presence", headers={"X-CSRF-Token": staff_client.csrf}
    )
    assert bad.status_code == 400
    # the panel's own tables are no resource: nobody's presence is kept there
    assert await conn.fetchval("SELECT count(*) FROM live_presence") == 0
    await conn.execute("CREATE TABLE secret_notes (id int PRIMARY KEY, body text)")
    await conn.execute("INSERT INTO secret_notes VALUES (1, 'payroll')")
    hidden = await staff_client.http.post(
        "/secret_notes/1/presence", headers={"X-CSRF-Token": staff_client.csrf}
    )
    assert hidden.status_code in (403, 404)
