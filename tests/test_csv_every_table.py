"""CSV import and export of tables the panel derives everything for: an introspected table
with every supported type, declared tables with references, header mapping, references by
name, dry runs, version checks and every problem of a file in one answer."""

from __future__ import annotations

import csv
import dataclasses
import io

import asyncpg
import pytest

from tests.conftest import LoggedIn
from tests.csv_helpers import upload

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE typed (
  id serial PRIMARY KEY,
  i2 smallint, i8 bigint NOT NULL,
  amount numeric(12, 3), f8 double precision,
  body text, short varchar(5),
  flag boolean NOT NULL DEFAULT false,
  day date, at timestamp, at_tz timestamptz,
  uid uuid UNIQUE, feeling mood, size text CHECK (size IN ('S', 'M', 'L')),
  docb jsonb, tags text[], nums integer[],
  CHECK (i2 IS NULL OR i2 >= 0)
);
"""
TYPED_CSV = (
    "i2,i8,amount,f8,body,short,flag,day,at,at_tz,uid,feeling,size,docb,tags,nums\n"
    '1,9007199254740993,12.345,1.5,"two\nlines",abc,true,2024-02-29,2024-02-29 23:59:59,'
    "2024-06-01 12:00:00+02,a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,happy,M,"
    '"{""a"": [1, 2]}","{x,""y z""}","{1,NULL,-3}"\n'
    ",7,,,,,,,,,,,,,,\n"
)


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, catalog_check_s=0.0)


@pytest.fixture
async def typed(conn: asyncpg.Connection) -> None:
    await conn.execute(SCHEMA)


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_an_introspected_table_imports_every_type_and_exports_it_back(
    typed: None, admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    response = await upload(admin_client, "typed", TYPED_CSV)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2
    row = await conn.fetchrow("SELECT * FROM typed ORDER BY id LIMIT 1")
    assert row["i8"] == 9007199254740993 and str(row["amount"]) == "12.345"
    assert row["body"] == "two\nlines" and row["flag"] is True
    assert row["tags"] == ["x", "y z"] and row["nums"] == [1, None, -3]
    assert row["docb"] == {"a": [1, 2]} and row["feeling"] == "happy"
    empty = await conn.fetchrow("SELECT * FROM typed ORDER BY id DESC LIMIT 1")
    assert empty["flag"] is False and empty["body"] is None and empty["i2"] is None

    exported = await admin_client.get("/typed/export.csv?raw=1", headers=SAME_ORIGIN)
    assert exported.status_code == 200
    rows = parse(exported.text)
    assert rows[0]["tags"] == '{x,"y z"}' and rows[0]["body"] == "two\nlines"
    # the exact export, upserted on the primary key, changes nothing
    again = await upload(admin_client, "typed", exported.text, mode="upsert")
    assert again.status_code == 200, again.text
    assert again.json()["unchanged"] == 2


async def test_a_table_whose_key_is_generated_always_upserts_by_that_key(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    await conn.execute(
        "CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)"
    )
    await conn.execute("INSERT INTO notes (body) VALUES ('first'), ('second')")
    exported = await admin_client.get("/notes/export.csv?raw=1", headers=SAME_ORIGIN)
    assert exported.status_code == 200
    assert [r["id"] for r in parse(exported.text)] == ["1", "2"]
    changed = exported.text.replace("second", "second edited") + "10,new,\n"
    response = await upload(admin_client, "notes", changed, mode="upsert")
    assert response.status_code == 200, response.text
    assert (response.json()["inserted"], response.json()["updated"]) == (1, 1)
    rows = await conn.fetch("SELECT id, body FROM notes ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, "first"), (2, "second edited"), (10, "new")]
    # the sequence has moved past the imported ids: the next generated one is free
    assert await conn.fetchval("INSERT INTO notes (body) VALUES ('x') RETURNING id") == 11


async def test_a_table_without_a_version_column_refuses_to_overwrite_a_later_edit(
    typed: None, admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    assert (await upload(admin_client, "typed", TYPED_CSV)).status_code == 200
    exported = await admin_client.get("/typed/export.csv?raw=1", headers=SAME_ORIGIN)
    rows = parse(exported.text)
    # the row's version (its xmin) travels in the file
    assert rows[0]["version"].isdigit()
    # someone edits the first row after the export
    await conn.execute("UPDATE typed SET body = 'edited meanwhile' WHERE id = 1")
    stale = await upload(admin_client, "typed", exported.text.replace(",7,", ",8,"), mode="upsert")
    assert stale.status_code == 422, stale.text
    problem = stale.json()["errors"][0]
    assert problem["column"] == "version" and problem["line"] == 2
    assert "changed by someone else" in problem["message"]
    assert await conn.fetchval("SELECT body FROM typed WHERE id = 1") == "edited meanwhile"
    assert await conn.fetchval("SELECT i8 FROM typed WHERE id = 2") == 7
    # a fresh export carries the new version and goes through
    fresh = await admin_client.get("/typed/export.csv?raw=1", headers=SAME_ORIGIN)
    again = await upload(admin_client, "typed", fresh.text.replace(",7,", ",8,"), mode="upsert")
    assert again.status_code == 200, again.text
    assert again.json()["updated"] == 1
    assert await conn.fetchval("SELECT i8 FROM typed WHERE id = 2") == 8


async def test_every_value_problem_of_an_introspected_table_in_one_answer(
    typed: None, admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    await upload(admin_client, "typed", TYPED_CSV)
    content = (
        "i2,i8,amount,short,day,uid,feeling,size,docb,tags\n"
        "-1,1,1.2345,toolong,2024-02-30,not-a-uuid,glad,XL,{bad,{unclosed\n"  # line 2
        ",,NaN,,,a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,,,,\n"  # line 3: required, taken uid
        "1,2,,,,b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,,,,\n"  # line 4: fine
        "1,3,,,,b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,,,,\n"  # line 5: uid twice in file
    )
    response = await upload(admin_client, "typed", content)
    assert response.status_code == 422
    body = response.json()
    found = {(e["line"], e["column"]) for e in body["errors"]}
    assert found == {
        (2, "i2"), (2, "amount"), (2, "short"), (2, "day"), (2, "uid"), (2, "feeling"),
        (2, "size"), (2, "docb"), (2, "tags"),
        (3, "i8"), (3, "amount"), (3, "uid"),
        (5, "uid"),
    }  # fmt: skip
    assert body["summary"] == f"Nothing imported: {len(found)} problems.", " | ".join(
        f"{e['line']} {e['column']} {e['message'][:20]}" for e in body["errors"]
    )
    messages = {(e["line"], e["column"]): e["message"] for e in body["errors"]}
    assert "first on line 4" in messages[(5, "uid")]
    assert messages[(3, "uid")] == "is already in the table"
    assert messages[(2, "size")] == "must be one of S, M, L"
    # a CHECK in plain words, not as SQL
    assert messages[(2, "i2")] == "must be at least 0 (or be left empty)"
    assert await conn.fetchval("SELECT count(*) FROM typed") == 2


async def test_staff_may_neither_import_nor_export_an_introspected_or_declared_table(
    typed: None, staff_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    for table in ("typed", "products", "users"):
        assert (await staff_client.get(f"/{table}/import")).status_code == 403
        refused = await upload(staff_client, table, "id\n1\n")
        assert refused.status_code == 403
        exported = await staff_client.get(f"/{table}/export.csv", headers=SAME_ORIGIN)
        assert exported.status_code == 403
    assert await conn.fetchval("SELECT count(*) FROM typed") == 0


async def _shop(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO users (id, username, email) VALUES (1, 'ann', 'ann@example.com'),"
        " (2, 'bob', 'bob@example.com');"
        "INSERT INTO products (id, sku, name, price) VALUES (1, 'SKU-1', 'One', 1),"
        " (2, 'SKU-2', 'Two', 2);"
        "INSERT INTO orders (id, user_id, total) VALUES (10, 1, 3)"
    )


async def test_headers_match_names_and_labels_loosely(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    content = "User Name,E-mail,Full Name,ACTIVE\nann,ann@example.com,Ann A,false\n"
    response = await upload(admin_client, "users", content)
    assert response.status_code == 200, response.text
    row = await conn.fetchrow("SELECT * FROM users")
    assert (row["username"], row["full_name"], row["is_active"]) == ("ann", "Ann A", False)


async def test_unknown_columns_are_reported_or_ignored_on_request(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    content = "username,email,nickname\nann,ann@example.com,Annie\n"
    reported = await upload(admin_client, "users", content)
    assert reported.status_code == 422
    assert "unknown column 'nickname'" in reported.json()["errors"][0]["message"]
    ignored = await admin_client.http.post(
        "/users/import?ignore_unknown=1",
        data={"csrf_token": admin_client.csrf, "mode": "insert"},
        files={"file": ("a.csv", content.encode(), "text/csv")},
        headers={"Accept": "application/json"},
    )
    assert ignored.status_code == 200, ignored.text
    assert await conn.fetchval("SELECT count(*) FROM users") == 1


async def test_two_headers_filling_one_column_are_refused(admin_client: LoggedIn) -> None:
    response = await upload(admin_client, "users", "email,E-Mail,username\na@x.org,b@x.org,ann\n")
    assert response.status_code == 422
    assert response.json()["errors"][0]["message"] == "column 'E-Mail' appears twice"
    both = await upload(admin_client, "orders", "user_id,User,total\n1,ann,1\n")
    assert both.status_code == 422
    assert both.json()["errors"][0]["message"] == "columns 'user_id' and 'User' both fill user_id"


async def test_a_chosen_mapping_wins(admin_client: LoggedIn, conn: asyncpg.Connection) -> None:
    response = await admin_client.http.post(
        "/users/import",
        data={"csrf_token": admin_client.csrf, "map_1": "username", "map_2": "email", "map_3": "-"},
        files={"file": ("a.csv", b"login,address,junk\nann,ann@example.com,x\n", "text/csv")},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert await conn.fetchval("SELECT username FROM users") == "ann"


async def test_references_by_name_resolve_and_unknown_names_are_named(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    await _shop(conn)
    orders = "customer,total\nbob,5.00\n"  # unknown header: reported
    assert (await upload(admin_client, "orders", orders)).status_code == 422
    by_name = "user,total\nbob,5.00\nzed,1.00\n"
    rejected = await upload(admin_client, "orders", by_name)
    assert rejected.status_code == 422
    (error,) = rejected.json()["errors"]
    assert (error["line"], error["column"], error["value"]) == (3, "user_id", "zed")
    assert "no user has this username" in error["message"]
    by_email = "user_email,total\nbob@example.com,5.00\n"
    assert (await upload(admin_client, "orders", by_email)).status_code == 200
    assert await conn.fetchval("SELECT user_id FROM orders WHERE total = 5") == 2
    items = "order_id,product_sku,quantity,unit_price\n10,SKU-2,1,2.00\n10,SKU-9,1,1.00\n"
    bad_items = await upload(admin_client, "order_items", items)
    assert bad_items.status_code == 422
    assert [e["line"] for e in bad_items.json()["errors"]] == [3]
    good = await upload(admin_client, "order_items", items.rsplit("10,SKU-9", 1)[0])
    assert good.status_code == 200, good.text
    assert await conn.fetchval("SELECT product_id FROM order_items") == 2


async def test_missing_reference_by_id_is_reported(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    await _shop(conn)
    response = await upload(admin_client, "orders", "user_id,total\n1,1\n99,2\n")
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["line"], error["column"]) == (3, "user_id")
    assert error["message"] == "is not the id of a user"


async def test_dry_run_checks_everything_and_writes_nothing(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    content = "username,email\nann,ann@example.com\nbob,bob@example.com\n"
    response = await admin_client.http.post(
        "/users/import?dry_run=1",
        content=content.encode(),
        headers={
            "Content-Type": "text/csv",
            "X-CSRF-Token": admin_client.csrf,
            "Accept": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "valid" and body["dry_run"] is True
    assert body["inserted"] == 2
    assert await conn.fetchval("SELECT count(*) FROM users") == 0
    bad = await admin_client.http.post(
        "/users/import?dry_run=1",
        content=b"username,email\nBAD,x\n",
        headers={
            "Content-Type": "text/csv",
            "X-CSRF-Token": admin_client.csrf,
            "Accept": "application/json",
        },
    )
    assert bad.status_code == 422 and bad.json()["error_count"] == 3  # username; email twice
    outcomes = await conn.fetch(
        "SELECT after->>'outcome' AS o FROM audit_log WHERE action = 'csv_import' ORDER BY id"
    )
    assert [r["o"] for r in outcomes] == ["validated", "rejected"]


async def test_an_upsert_never_overwrites_an_edit_made_since_the_export(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    await _shop(conn)
    exported = await admin_client.get("/users/export.csv?raw=1", headers=SAME_ORIGIN)
    rows = parse(exported.text)
    assert rows[0]["version"] == "1"
    await conn.execute("UPDATE users SET full_name = 'Edited meanwhile' WHERE username = 'ann'")
    rows[0]["full_name"] = "From the file"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    response = await upload(admin_client, "users", out.getvalue(), mode="upsert")
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["column"] == "version" and "changed by someone else" in error["message"]
    assert await conn.fetchval("SELECT full_name FROM users WHERE username = 'ann'") == (
        "Edited meanwhile"
    )


async def test_list_pages_link_to_csv_for_every_table(
    typed: None, admin_client: LoggedIn, staff_client: LoggedIn
) -> None:
    page = await admin_client.get("/typed")
    assert 'href="/typed/export.csv"' in page.text and 'href="/typed/import"' in page.text
    products = await staff_client.get("/products")
    assert "/products/export.csv" not in products.text


async def test_export_for_excel_and_with_the_listed_columns_only(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    await _shop(conn)
    await conn.execute("UPDATE users SET full_name = E'Two\\nlines' WHERE username = 'ann'")
    excel = await admin_client.get(
        "/orders/export.csv?excel=1", headers={**SAME_ORIGIN, "Accept-Language": "de-DE,de"}
    )
    assert excel.status_code == 200
    assert excel.content.startswith(b"\xef\xbb\xbfid;user_id;status;total;created_at;version\r\n")
    assert b";3,00;" in excel.content
    comma = await admin_client.get(
        "/users/export.csv?excel=1", headers={**SAME_ORIGIN, "Accept-Language": "en-US"}
    )
    body = comma.content.decode("utf-8-sig")
    assert body.count("\r\n") == 3 and '"Two\nlines"' in body  # rows end CRLF, data kept
    listed = await admin_client.get("/products/export.csv?columns=list", headers=SAME_ORIGIN)
    header = listed.text.splitlines()[0].split(",")
    assert "description" not in header and "sku" in header
    # the semicolon file imports back as it is (the delimiter and decimal commas detected)
    await conn.execute("DELETE FROM orders")
    back = await upload(admin_client, "orders", excel.content)
    assert back.status_code == 200, back.text
    assert await conn.fetchval("SELECT total FROM orders") == 3
