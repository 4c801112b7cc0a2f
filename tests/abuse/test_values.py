"""Values that PostgreSQL stores but Python cannot (infinity, BC, years past 9999, NaN) and
forged input (cursors, form fields, ids): every page renders, every bad input is a 4xx."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from admin import pg_values
from tests.conftest import TEST_SECRET_KEY, LoggedIn
from tests.live import live_server
from tests.live_helpers import add_customer, event_ids, insert_orders, logged_in_client
from tests.resource_helpers import ORDER_SORTS, USER_SORTS
from tests.sse_client import messages

# created_at / updated_at of the odd users and orders, as written to PostgreSQL
ODD_MOMENTS = [
    "infinity",
    "-infinity",
    "20000-01-01 00:00:00+00",
    "0044-03-15 00:00:00+00 BC",
    "294276-12-31 23:59:59.999999+00",
    "4714-11-24 00:00:00+00 BC",
    "10000-01-01 00:00:00.5+00",
    "0001-01-01 00:00:00+00 BC",
]


async def seed_odd_rows(conn: asyncpg.Connection) -> dict[str, int]:
    """One user and one order per odd moment, plus ordinary ones; orders with a NaN total."""
    ids: dict[str, int] = {}
    for n, moment in enumerate(ODD_MOMENTS):
        ids[moment] = await conn.fetchval(
            "INSERT INTO users (username, email, full_name, created_at, updated_at)"
            " VALUES ($1, $2, 'Odd', $3::text::timestamptz, $3::text::timestamptz) RETURNING id",
            f"odd{n}",
            f"odd{n}@x.io",
            moment,
        )
    for n in range(3):
        await conn.execute(
            "INSERT INTO users (username, email, created_at)"
            " VALUES ($1, $2, $3::text::timestamptz)",
            f"plain{n}",
            f"plain{n}@x.io",
            f"2024-0{n + 1}-01 12:00+00",
        )
    await conn.execute(
        """
        INSERT INTO orders (user_id, status, total, created_at, updated_at)
        SELECT u.id, 'paid', CASE WHEN odd THEN 'NaN' ELSE 12.5 END,
               CASE WHEN odd THEN u.created_at ELSE now() END,
               CASE WHEN odd THEN u.updated_at ELSE now() END
        FROM users u, LATERAL (SELECT u.username LIKE 'odd%' AS odd) AS o ORDER BY u.id
        """
    )
    return ids


async def pg_text(conn: asyncpg.Connection, sql: str, *args: object) -> list[str]:
    """The first column of `sql` as PostgreSQL writes it (ISO, UTC), row by row."""
    async with conn.transaction():
        await conn.execute("SET LOCAL TimeZone = 'UTC'")
        return [r[0] for r in await conn.fetch(sql, *args)]


def row_ids(html: str, kind: str) -> list[int]:
    return [int(m) for m in re.findall(r'<tr id="row-(\d+)"', html)]


def link(html: str, rel: str) -> str | None:
    match = re.search(rf'<a href="([^"]+)"[^>]*rel="{rel}"', html)
    return match.group(1).replace("&amp;", "&") if match else None


async def walk_pages(http: LoggedIn, url: str, kind: str) -> tuple[list[int], list[int]]:
    """(ids forwards through every Next link, ids backwards from the last page)."""
    seen: list[int] = []
    last = url
    next_url: str | None = url
    while next_url:
        response = await http.get(next_url)
        assert response.status_code == 200, (next_url, response.text[:500])
        seen += row_ids(response.text, kind)
        last, next_url = next_url, link(response.text, "next")
    response = await http.get(last)
    back = row_ids(response.text, kind)
    prev_url = link(response.text, "prev")
    while prev_url:
        response = await http.get(prev_url)
        assert response.status_code == 200, (prev_url, response.text[:500])
        back = row_ids(response.text, kind) + back
        prev_url = link(response.text, "prev")
    return seen, back


# ---- values Python cannot hold


async def test_codecs_decode_what_postgres_stores_and_encode_it_back(conn) -> None:
    for kind in ("timestamptz", "timestamp", "date"):
        for moment in [*ODD_MOMENTS, "2024-02-29 10:11:12.000013+00", "0001-01-01 00:00:00+00"]:
            value, text = await conn.fetchrow(
                f"SELECT $1::text::{kind}, $1::text::{kind}::text", moment
            )
            if isinstance(value, pg_values.PgDateTime):
                (expected,) = await pg_text(conn, f"SELECT $1::text::{kind}::text", moment)
                assert value == expected
                assert pg_values.parse_text(str(value), kind).ticks == value.ticks
            # whatever it decoded to goes back to the very same value
            assert await conn.fetchval(f"SELECT $1::{kind}::text", value) == text


async def test_numeric_nan_infinity_and_huge_json_numbers_decode(conn) -> None:
    assert (await conn.fetchval("SELECT 'NaN'::numeric(12,2)")).is_nan()
    assert await conn.fetchval("SELECT '-Infinity'::numeric") == Decimal("-Infinity")
    huge = await conn.fetchval("SELECT ('{\"n\": 1' || repeat('0', 5000) || '}')::jsonb")
    assert huge["n"] == Decimal(10) ** 5000


async def test_pages_render_rows_with_odd_dates_and_nan_totals(
    staff_client: LoggedIn, conn
) -> None:
    ids = await seed_odd_rows(conn)
    shown = await pg_text(
        conn, "SELECT created_at::text FROM users WHERE username LIKE 'odd%' ORDER BY id"
    )
    assert "20000-01-01 00:00:00+00" in shown and "0044-03-15 00:00:00+00 BC" in shown
    pages = ["/", "/users", "/orders", "/users?sort=created_at&dir=desc", "/orders?sort=total"]
    for url in pages:
        for headers in ({}, {"HX-Request": "true"}):
            response = await staff_client.get(url, headers=headers)
            assert response.status_code == 200, (url, response.text[:500])
            if url != "/":
                for text in shown:
                    assert text in response.text, (url, text)
    orders_page = await staff_client.get("/orders")
    assert ">NaN</td>" in orders_page.text
    for moment, user_id in ids.items():
        (text,) = await pg_text(conn, "SELECT created_at::text FROM users WHERE id = $1", user_id)
        order_id = await conn.fetchval("SELECT id FROM orders WHERE user_id = $1", user_id)
        for url in [
            f"/users/{user_id}",
            f"/users/{user_id}/edit",
            f"/users/{user_id}/row",
            f"/users/{user_id}/inline",
            f"/users/{user_id}/delete",
            f"/orders/{order_id}",
            f"/orders/{order_id}/edit",
            f"/orders/{order_id}/delete",
        ]:
            response = await staff_client.get(url)
            assert response.status_code == 200, (moment, url, response.text[:500])
            if url.endswith((f"/{user_id}", "/row", "/inline", f"/{order_id}")):
                assert text in response.text, (moment, url)
        assert "NaN" in (await staff_client.get(f"/orders/{order_id}")).text


@pytest.mark.parametrize("kind", ["users", "orders"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_keyset_pages_walk_past_infinity_bc_and_far_future(
    staff_client: LoggedIn, conn, kind: str, direction: str
) -> None:
    await seed_odd_rows(conn)
    sorts = USER_SORTS if kind == "users" else ORDER_SORTS
    for key in sorts:
        expected = [
            r["id"]
            for r in await conn.fetch(
                f'SELECT id FROM {kind} ORDER BY "{key}" {direction}, id {direction}'
            )
        ]
        forwards, backwards = await walk_pages(
            staff_client, f"/{kind}?sort={key}&dir={direction}&limit=2", kind[:-1]
        )
        assert forwards == expected, key
        assert backwards == expected, key


async def test_cursor_of_an_odd_moment_round_trips(app, conn) -> None:
    from admin.resources import cursors
    from admin.resources.model import SortKey
    from admin.resources.registry import Registry

    await seed_odd_rows(conn)
    registry = Registry(["public"])
    await registry.current(conn)
    users = registry.tables["users"]
    sort = (SortKey(users.by_name["created_at"]),)
    for row in await conn.fetch("SELECT id, created_at FROM users"):
        cursor = cursors.encode(users, sort, row)
        decoded = cursors.decode(cursor, users, sort)
        same = await conn.fetchval(
            "SELECT created_at = $1 FROM users WHERE id = $2", decoded.value, decoded.key[0]
        )
        assert same, row


async def test_dashboard_counts_only_today_and_renders_odd_events(
    staff_client: LoggedIn, conn
) -> None:
    await seed_odd_rows(conn)
    await conn.execute(
        "INSERT INTO order_events (order_id, kind, payload, created_at) VALUES"
        ' (1, \'created\', \'{"total": "NaN", "status": "paid"}\', \'20000-01-01\'),'
        " (2, 'created', '{\"total\": \"not a number\"}', '0044-03-15 BC'),"
        " (3, 'updated', '{\"total\": [1]}', 'infinity')"
    )
    response = await staff_client.get("/")
    assert response.status_code == 200, response.text[:500]
    assert "20000-01-01 00:00:00+00" in response.text
    assert "0044-03-15 00:00:00+00 BC" in response.text
    assert '<span class="feed-total">NaN</span>' in response.text
    # three ordinary orders were created today; the far-future and BC ones were not
    assert 'data-counter="total">3<' in response.text
    fragment = await staff_client.get("/?status=paid", headers={"HX-Request": "true"})
    assert fragment.status_code == 200


async def test_export_and_audit_show_odd_values(admin_client: LoggedIn, conn) -> None:
    ids = await seed_odd_rows(conn)
    export = await admin_client.get("/users/export.csv", headers={"Sec-Fetch-Site": "same-origin"})
    assert export.status_code == 200
    assert "infinity" in export.text and "20000-01-01" in export.text
    user_id = ids["20000-01-01 00:00:00+00"]
    version = await conn.fetchval("SELECT version FROM users WHERE id = $1", user_id)
    saved = await admin_client.post(
        f"/users/{user_id}",
        {"username": "renamed", "email": "odd@x.io", "full_name": "Odd", "version": str(version)},
    )
    assert saved.status_code == 303, saved.text[:500]
    audit = await admin_client.get("/audit")
    assert audit.status_code == 200
    assert "20000-01-01 00:00:00+00" in json.dumps(
        await conn.fetchval("SELECT before FROM audit_log WHERE resource_id = $1", str(user_id))
    )


async def test_editing_a_user_keeps_an_odd_created_at(staff_client: LoggedIn, conn) -> None:
    ids = await seed_odd_rows(conn)
    for moment, user_id in ids.items():
        before = await pg_text(conn, "SELECT created_at::text FROM users WHERE id = $1", user_id)
        version = await conn.fetchval("SELECT version FROM users WHERE id = $1", user_id)
        form = {
            "username": f"edited{user_id}",
            "email": f"edited{user_id}@x.io",
            "full_name": "Edited",
            "version": str(version),
        }
        full = await staff_client.post(f"/users/{user_id}", form)
        assert full.status_code == 303, (moment, full.text[:500])
        inline = await staff_client.post(
            f"/users/{user_id}/inline", {**form, "full_name": "Inline", "version": str(version + 1)}
        )
        assert inline.status_code == 200, (moment, inline.text[:500])
        assert before[0] in inline.text
        after = await pg_text(conn, "SELECT created_at::text FROM users WHERE id = $1", user_id)
        assert after == before


async def test_status_change_of_an_order_with_a_nan_total_keeps_it(
    staff_client: LoggedIn, conn
) -> None:
    await seed_odd_rows(conn)
    order_id, version = await conn.fetchrow(
        "SELECT id, version FROM orders WHERE total = 'NaN' ORDER BY id LIMIT 1"
    )
    response = await staff_client.post(
        f"/orders/{order_id}/status", {"status": "shipped", "version": str(version)}
    )
    assert response.status_code == 303, response.text[:500]
    row = await conn.fetchrow("SELECT status, total FROM orders WHERE id = $1", order_id)
    assert row["status"] == "shipped" and row["total"].is_nan()
    # the full edit form keeps an unchanged NaN as it is (it writes changed fields only),
    # and refuses to store a new one, with a message instead of a 500
    kept = await staff_client.post(
        f"/orders/{order_id}", {"status": "paid", "total": "NaN", "version": str(version + 1)}
    )
    assert kept.status_code == 303, kept.text[:500]
    row = await conn.fetchrow("SELECT status, total FROM orders WHERE id = $1", order_id)
    assert row["status"] == "paid" and row["total"].is_nan()
    other_id, other_version = await conn.fetchrow(
        "SELECT id, version FROM orders WHERE total <> 'NaN' ORDER BY id LIMIT 1"
    )
    refused = await staff_client.post(
        f"/orders/{other_id}", {"total": "NaN", "version": str(other_version)}
    )
    assert refused.status_code == 422 and "Enter an amount from 0" in refused.text


# ---- forged input


def modern(payload: object) -> object:
    """A forged [sort, value, id] in the cursor's shape: [sort, value text, [key texts]]."""
    if not isinstance(payload, list) or len(payload) != 3:
        return payload
    key, value, row_id = payload
    if key == "id" and type(value) is int:
        value = str(value)
    if row_id == "1":
        return [key, value, [1]]  # a number where the key's text belongs
    return [key, value, [str(row_id) if type(row_id) is int else row_id]]


def forged(payload: object) -> str:
    payload = modern(payload)
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED_CURSORS = {
    "id": [
        ["id", 1, 2**63],
        ["id", 1, -(2**63) - 1],
        ["id", 1, 10**30],
        ["id", 1, 1.5],
        ["id", 1, True],
        ["id", 1, "1"],
        ["id", 1],
        ["id", 1, 1, 1],
        {"id": 1},
        "id",
        None,
    ],
    "user_id": [["user_id", 10**30, 1], ["user_id", True, 1], ["user_id", "1e3", 1]],
    "email": [
        ["email", "a\x00b", 1],
        ["email", "\ud800", 1],
        ["email", "x\udfff", 1],
        ["email", 5, 1],
        ["email", None, 1],
    ],
    "is_active": [["is_active", 1, 1], ["is_active", "maybe", 1]],
    "total": [
        ["total", "1e999999", 1],
        ["total", "1e-999999", 1],
        ["total", "sNaN", 1],
        ["total", "12,5", 1],
        ["total", 12.5, 1],
        ["total", "0E+200000", 1],
    ],
    "created_at": [
        ["created_at", "0001-01-01T00:00:00", 1],
        ["created_at", "2024-13-01T00:00:00+00:00", 1],
        ["created_at", "1e999999", 1],
        ["created_at", "294277-01-01 00:00:00+00", 1],
        ["created_at", "4714-11-23 23:59:59+00 BC", 1],
        ["created_at", "0000-01-01 00:00:00+00 BC", 1],
        ["created_at", "20000-02-30 00:00:00+00", 1],
        ["created_at", "20000-01-01 00:00:00", 1],
        ["created_at", "infinity ", 1],
        ["created_at", 0, 1],
    ],
}
RAW_CURSORS = [
    *("%00", "%ED%A0%80", "%F0%9F%92%A9", "====", "!!!!"),
    *(forged(b"\xff\xfe"), forged(b"[[[" * 200)),
]


@pytest.mark.parametrize("kind", ["users", "orders"])
async def test_forged_cursors_are_400(staff_client: LoggedIn, conn, kind: str) -> None:
    await seed_odd_rows(conn)
    sorts = USER_SORTS if kind == "users" else ORDER_SORTS
    for key, payloads in FORGED_CURSORS.items():
        if key not in sorts:
            continue
        for payload in payloads:
            for name in ("after", "before"):
                url = f"/{kind}?sort={key}&{name}={forged(payload)}"
                response = await staff_client.get(url)
                assert response.status_code == 400, (payload, response.text[:300])
                assert "cursor" in response.text
    for raw in RAW_CURSORS:
        response = await staff_client.get(f"/{kind}?after={raw}")
        assert response.status_code == 400, (raw, response.text[:300])


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00+05:00",
        "0001-01-01T00:00:00-14:00",
        "9999-12-31T23:59:59.999999-12:00",
        "9999-12-31T23:59:59+14:00",
        "infinity",
        "-infinity",
        "294276-12-31 23:59:59.999999+00",
        "4714-11-24 00:00:00+00 BC",
    ],
)
async def test_cursors_at_the_edges_of_time_are_served(
    staff_client: LoggedIn, conn, moment: str
) -> None:
    await seed_odd_rows(conn)
    for kind in ("users", "orders"):
        cursor = forged(["created_at", moment, 1])
        response = await staff_client.get(f"/{kind}?sort=created_at&after={cursor}")
        assert response.status_code == 200, (kind, response.text[:300])


@pytest.mark.parametrize("total", ["NaN", "Infinity", "-Infinity", "1e131071", "1e-16383"])
async def test_numeric_cursors_postgres_accepts_are_served(
    staff_client: LoggedIn, conn, total: str
) -> None:
    await seed_odd_rows(conn)
    response = await staff_client.get(f"/orders?sort=total&after={forged(['total', total, 1])}")
    assert response.status_code == 200, response.text[:300]


CONTROL_TEXT = ["a\x00b", "a\x01b", "a\x1bb", "a\x7fb", "a\u0085b", "a\tb", "a\nb"]


async def test_control_characters_in_user_fields_are_422(staff_client: LoggedIn, conn) -> None:
    await seed_odd_rows(conn)
    user_id, version = await conn.fetchrow("SELECT id, version FROM users ORDER BY id LIMIT 1")
    before = await conn.fetchval("SELECT count(*) FROM audit_log")
    for bad in CONTROL_TEXT:
        for name, value in (("email", f"x{bad}@x.io"), ("full_name", f"Jo{bad}")):
            form = {"username": "newuser", "email": "new@x.io", "full_name": "New", name: value}
            created = await staff_client.post("/users", form)
            assert created.status_code == 422, (name, bad, created.text[:300])
            assert "control" in created.text or "valid email" in created.text
            updated = await staff_client.post(
                f"/users/{user_id}", {**form, "version": str(version)}
            )
            assert updated.status_code == 422, (name, bad, updated.text[:300])
            inline = await staff_client.post(
                f"/users/{user_id}/inline", {**form, "version": str(version)}
            )
            assert inline.status_code == 422, (name, bad, inline.text[:300])
            check = await staff_client.post("/users/validate", {"field": name, name: value})
            assert check.status_code == 200, (name, bad)
            assert "control" in check.text or "valid email" in check.text, (name, bad)
    # the email check is strict about invisible characters, the name allows joiners
    assert await staff_client.post("/users/validate", {"field": "email", "email": "a\u200d@x.io"})
    joiner = await staff_client.post(
        "/users/validate", {"field": "full_name", "full_name": "م\u200cم"}
    )
    assert "control" not in joiner.text
    assert await conn.fetchval("SELECT count(*) FROM audit_log") == before
    assert await conn.fetchval("SELECT count(*) FROM users WHERE username = 'newuser'") == 0


@pytest.mark.parametrize("raw", ["²", "١٢", "1.0", "-1", "9" * 30, "0x10"])
async def test_odd_digits_in_ids_are_4xx(admin_client: LoggedIn, conn, raw: str) -> None:
    from urllib.parse import quote

    for url in (f"/users/{quote(raw)}", f"/orders/{quote(raw)}", f"/audit?before={quote(raw)}"):
        response = await admin_client.get(url)
        assert response.status_code in (400, 404), (url, response.status_code)
    response = await admin_client.post(f"/staff/{quote(raw)}/active", {"active": "false"})
    assert response.status_code in (400, 404), (raw, response.status_code)


async def test_audit_entries_store_text_jsonb_refuses(admin_client: LoggedIn, conn) -> None:
    """jsonb refuses NUL and lone surrogates; an audit entry of such input is still written."""
    await seed_odd_rows(conn)
    export = await admin_client.get(
        "/users/export.csv?note=a%00b&q=&sort=email",
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert export.status_code == 200 and "odd0" in export.text
    after = await conn.fetchval(
        "SELECT after FROM audit_log WHERE action = 'csv_export' ORDER BY id DESC LIMIT 1"
    )
    # the filters the export applied, not whatever else the URL carried
    assert after["filters"] == {"sort": "email", "dir": "asc"}
    assert after["outcome"] == "completed"
    await conn.execute(
        "INSERT INTO audit_log (action, resource, after) VALUES ('probe', 'x', $1)",
        {"text": "\x00\ud800😀", "\x00key": ["\udfff"]},
    )
    stored = await conn.fetchval("SELECT after FROM audit_log WHERE action = 'probe'")
    assert stored == {"text": "\ufffd\ufffd😀", "\ufffdkey": ["\ufffd"]}


async def test_audit_page_shows_entries_with_numbers_python_refuses(
    admin_client: LoggedIn, conn
) -> None:
    huge = "1" + "0" * 5000
    await conn.execute(
        "INSERT INTO audit_log (action, resource, resource_id, before, after)"
        f" VALUES ('update', 'users', '1', '{{\"n\": {huge}}}', '{{\"n\": 1.5e-300}}')"
    )
    page = await admin_client.get("/audit")
    assert page.status_code == 200, page.text[:300]
    assert huge in page.text


async def test_live_feed_delivers_events_with_odd_dates_and_totals(
    database_url: str, tmp_path: Path
) -> None:
    """The hub's own connection decodes what any writer put in order_events (it used to
    fail every poll from then on, and the feed stopped for everyone)."""
    writer = await asyncpg.connect(database_url)
    try:
        with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
            http = await logged_in_client(server.url, database_url, "watcher")
            customer = await add_customer(writer)
            async with http.stream("GET", "/events", timeout=None) as response:
                assert response.status_code == 200
                stream = messages(response)
                await anext(stream)
                await writer.execute(
                    "INSERT INTO order_events (order_id, kind, payload, created_at) VALUES"
                    ' (1, \'created\', \'{"total": "NaN", "status": "paid"}\','
                    " '20000-01-01'), (2, 'created', '{\"total\": 5}', 'infinity')"
                )
                await insert_orders(writer, customer, 2)
                expected = await event_ids(writer)
                got = []
                async with asyncio.timeout(20):
                    async for message in stream:
                        if message.event == "order":
                            got.append(message)
                        if len(got) == len(expected):
                            break
            await http.aclose()
    finally:
        await writer.close()
    assert [int(m.id or 0) for m in got] == expected
    assert "20000-01-01 00:00:00+00" in got[0].data and ">NaN<" in got[0].data
    assert "infinity" in got[1].data
