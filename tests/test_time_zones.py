"""Each staff member's time zone: chosen on /account, then every page's times are in it."""

from __future__ import annotations

import re

import asyncpg
import pytest

from tests.conftest import LoggedIn
from tests.snapshot import snapshot

SELECTED = re.compile(r'<option value="([^"]+)" selected>')


async def stored_zone(conn: asyncpg.Connection, staff_id: int) -> str:
    return str(await conn.fetchval("SELECT time_zone FROM staff WHERE id = $1", staff_id))


async def test_a_new_member_reads_utc_and_the_form_shows_it(staff_client: LoggedIn, conn):
    assert await stored_zone(conn, staff_client.staff_id) == "UTC"
    page = await staff_client.get("/account")
    assert page.status_code == 200
    assert '<label for="time_zone">Time zone</label>' in page.text
    assert '<select id="time_zone" name="time_zone"' in page.text
    assert SELECTED.findall(page.text) == ["UTC"]
    assert '<optgroup label="Europe">' in page.text
    assert "<script>" not in page.text and "onclick" not in page.text


async def test_the_chosen_zone_is_saved_shown_selected_and_audited(staff_client: LoggedIn, conn):
    response = await staff_client.post("/account/time-zone", {"time_zone": "Asia/Kolkata"})
    assert response.status_code == 303 and response.headers["location"] == "/account"
    assert await stored_zone(conn, staff_client.staff_id) == "Asia/Kolkata"
    page = await staff_client.get("/account")
    assert SELECTED.findall(page.text) == ["Asia/Kolkata"]
    assert "Times are now shown in Asia/Kolkata." in page.text
    assert re.search(r"Now: \d{4}-\d\d-\d\d \d\d:\d\d IST\.", page.text)
    entry = await conn.fetchrow(
        "SELECT staff_username, action, resource, resource_id, before, after"
        " FROM audit_log ORDER BY id DESC LIMIT 1"
    )
    assert dict(entry) == {
        "staff_username": "clerk",
        "action": "time_zone_change",
        "resource": "staff",
        "resource_id": str(staff_client.staff_id),
        "before": {"time_zone": "UTC"},
        "after": {"time_zone": "Asia/Kolkata"},
    }
    # choosing the same zone again changes nothing and writes no entry
    count = await conn.fetchval("SELECT count(*) FROM audit_log")
    again = await staff_client.post("/account/time-zone", {"time_zone": "Asia/Kolkata"})
    assert again.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM audit_log") == count


async def test_a_legacy_alias_is_accepted_and_stays_selected(staff_client: LoggedIn, conn):
    response = await staff_client.post("/account/time-zone", {"time_zone": "US/Eastern"})
    assert response.status_code == 303
    page = await staff_client.get("/account")
    assert SELECTED.findall(page.text) == ["US/Eastern"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Choose a time zone."),
        ("Mars/Olympus_Mons", "&#39;Mars/Olympus_Mons&#39; is not a time zone"),
        ("localtime", "is not a time zone"),
        ("../../etc/passwd", "is not a time zone"),
        ("Europe/Berlin\x00", "is not a time zone"),
        ("<b>x</b>", "&#39;&lt;b&gt;x&lt;/b&gt;&#39; is not a time zone"),
        ("E" * 500, "…&#39; is not a time zone"),
    ],
)
async def test_an_invalid_zone_is_refused_with_the_form(
    staff_client: LoggedIn, conn, value: str, message: str
):
    before = await snapshot(conn)
    response = await staff_client.post("/account/time-zone", {"time_zone": value})
    assert response.status_code == 422
    assert message in response.text
    assert 'id="time-zone-form"' in response.text and 'aria-invalid="true"' in response.text
    assert SELECTED.findall(response.text) == ["UTC"]  # the stored zone, still selected
    assert await snapshot(conn) == before


async def test_an_invalid_zone_from_htmx_gets_the_form_fragment(staff_client: LoggedIn):
    response = await staff_client.post(
        "/account/time-zone", {"time_zone": "Nowhere"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert response.text.startswith('<form id="time-zone-form"')


async def test_a_post_without_the_csrf_token_is_refused(staff_client: LoggedIn, conn):
    response = await staff_client.http.post("/account/time-zone", data={"time_zone": "Asia/Tokyo"})
    assert response.status_code == 403
    assert await stored_zone(conn, staff_client.staff_id) == "UTC"


async def test_choosing_a_zone_needs_a_login(client):  # type: ignore[no-untyped-def]
    response = await client.post("/account/time-zone", data={"time_zone": "Asia/Tokyo"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
