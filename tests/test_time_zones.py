"""Each staff member's time zone: chosen on /account, then every page's times are in it."""

from __future__ import annotations

import re

import asyncpg
import pytest

from admin import audit
from admin.live.events import recent
from admin.live.view import feed_item_html
from admin.staff import table as staff_table
from tests.conftest import LoggedIn
from tests.live_helpers import add_customer, insert_orders
from tests.snapshot import snapshot

SELECTED = re.compile(r'<option value="([^"]+)" selected>')


async def stored_zone(conn: asyncpg.Connection, staff_id: int) -> str:
    return str(await conn.fetchval("SELECT time_zone FROM staff WHERE id = $1", staff_id))


async def entry_at(conn: asyncpg.Connection, at: str) -> int:
    """An audit entry written at the moment `at` (ISO 8601 with offset); returns its id."""
    member = await staff_table.get(conn, await conn.fetchval("SELECT min(id) FROM staff"))
    await audit.record(conn, staff=member, action="update", resource="users", resource_id=1)
    return int(
        await conn.fetchval(
            "UPDATE audit_log SET at = $1::text::timestamptz"
            " WHERE id = (SELECT max(id) FROM audit_log) RETURNING id",
            at,
        )
    )


def audit_time(html: str, entry_id: int) -> str:
    row = rf'<tr data-id="{entry_id}">.*?<td>(<time [^>]*>[^<]*</time>)</td>'
    match = re.search(row, html, re.S)
    assert match, html
    return match.group(1)


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


async def test_the_audit_log_shows_times_in_the_readers_zone(admin_client: LoggedIn, conn):
    entry = await entry_at(conn, "2026-01-15 12:00:00+00")
    page = await admin_client.get("/audit")
    assert audit_time(page.text, entry) == (
        '<time datetime="2026-01-15T12:00:00+00:00">2026-01-15 12:00:00 UTC</time>'
    )
    await admin_client.post("/account/time-zone", {"time_zone": "Asia/Kolkata"})
    page = await admin_client.get("/audit")
    assert audit_time(page.text, entry) == (
        '<time datetime="2026-01-15T17:30:00+05:30">2026-01-15 17:30:00 IST</time>'
    )


async def test_summer_and_winter_time_each_get_their_own_name(admin_client: LoggedIn, conn):
    winter = await entry_at(conn, "2026-01-15 12:00:00+00")
    summer = await entry_at(conn, "2026-07-15 12:00:00+00")
    # the last minute before the spring change (01:00 UTC, 29 March 2026) and the first after
    before_change = await entry_at(conn, "2026-03-29 00:59:00+00")
    after_change = await entry_at(conn, "2026-03-29 01:00:00+00")
    await admin_client.post("/account/time-zone", {"time_zone": "Europe/Berlin"})
    html = (await admin_client.get("/audit")).text
    assert ">2026-01-15 13:00:00 CET<" in audit_time(html, winter)
    assert ">2026-07-15 14:00:00 CEST<" in audit_time(html, summer)
    assert ">2026-03-29 01:59:00 CET<" in audit_time(html, before_change)
    assert ">2026-03-29 03:00:00 CEST<" in audit_time(html, after_change)


async def test_a_zone_without_an_abbreviation_shows_its_offset(admin_client: LoggedIn, conn):
    entry = await entry_at(conn, "2026-01-15 12:00:00+00")
    await admin_client.post("/account/time-zone", {"time_zone": "America/Sao_Paulo"})
    html = (await admin_client.get("/audit")).text
    assert ">2026-01-15 09:00:00 UTC-3<" in audit_time(html, entry)


async def test_the_staff_list_shows_last_logins_in_the_readers_zone(admin_client: LoggedIn, conn):
    await conn.execute(
        "UPDATE staff SET last_login_at = '2026-07-01 23:30:00+00' WHERE id = $1",
        admin_client.staff_id,
    )
    await admin_client.post("/account/time-zone", {"time_zone": "Asia/Tokyo"})
    html = (await admin_client.get("/staff")).text
    assert '<time datetime="2026-07-02T08:30:00+09:00">2026-07-02 08:30 JST</time>' in html


async def test_the_live_feed_is_the_same_for_every_reader_and_names_utc(
    staff_client: LoggedIn, conn
):
    customer = await add_customer(conn)
    await insert_orders(conn, customer, 1)
    await conn.execute("UPDATE order_events SET created_at = '2026-01-15 12:00:05+00'")
    await staff_client.post("/account/time-zone", {"time_zone": "Asia/Kolkata"})
    html = (await staff_client.get("/")).text
    [event] = await recent(conn, upto=None, status=None, limit=1)
    pushed = feed_item_html(event)  # what the live stream sends to every client
    assert '<time datetime="2026-01-15T12:00:05+00:00">12:00:05 UTC</time>' in pushed
    assert pushed.strip() in html
