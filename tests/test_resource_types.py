"""Values of every supported type through the form of a table the panel has never seen:
an untouched form changes nothing, each changed field is stored as typed, bad text is a 422
on its field."""

from __future__ import annotations

import dataclasses

import pytest

from tests.browser_forms import as_posted, audit_entries, field_error, form_dict, form_fields
from tests.conftest import LoggedIn

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'very "happy"');
CREATE TABLE typed (
  id serial PRIMARY KEY,
  i2 smallint, i4 integer, i8 bigint,
  amount numeric(12, 3), free numeric,
  f4 real, f8 double precision,
  body text, short varchar(10),
  flag boolean NOT NULL DEFAULT false, maybe boolean,
  day date, at timestamp, at_tz timestamptz,
  uid uuid, feeling mood, size text CHECK (size IN ('S', 'M', 'L')),
  doc json, docb jsonb, tags text[], nums integer[],
  blob bytea, addr inet, words tsvector
);
"""
EDGE_ROWS = [
    """(-32768, 2147483647, -9223372036854775808, 123456789.123, 3.14159265358979323846264338,
        'NaN', 'Infinity', '  two lines,
second <b>&amp;</b> ünï 😀  ', 'exactly10!', true, NULL,
        'infinity', '2024-02-29 23:59:59.999999', '2024-06-01 12:00:00+02',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'very "happy"', 'M',
        '{"b": 1,  "a": [1, 2.50, "x"]}',
        '{"nested": {"list": [1, {"é": "日本"}], "null": null}, "emoji": "😀", "n": 1e400}',
        '{"",a,NULL,"b c","with,comma"}', '{1,NULL,-3}', '\\xdeadbeef', '192.168.0.1/24',
        'a fat cat')""",
    """(32767, -2147483648, 9223372036854775807, -0.001, 'NaN', '-Infinity', 'NaN', '', '',
        false, false, '0044-03-15 BC', '-infinity', 'infinity', NULL, 'sad', NULL, 'null',
        '[]', '{}', '{}', NULL, NULL, NULL)""",
    """(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, true, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
]
COLUMNS = (
    "i2, i4, i8, amount, free, f4, f8, body, short, flag, maybe, day, at, at_tz, uid, feeling,"
    " size, doc, docb, tags, nums, blob, addr, words"
)


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, catalog_check_s=0.0)


@pytest.fixture
async def typed(conn) -> list[int]:  # type: ignore[no-untyped-def]
    await conn.execute(SCHEMA)
    ids = []
    for values in EDGE_ROWS:
        ids.append(
            await conn.fetchval(f"INSERT INTO typed ({COLUMNS}) VALUES {values} RETURNING id")
        )
    return ids


async def stored(conn, row_id: int) -> str:  # type: ignore[no-untyped-def]
    text: str = await conn.fetchval("SELECT t::text FROM typed t WHERE id = $1", row_id, timeout=5)
    return text


@pytest.mark.parametrize("row", range(len(EDGE_ROWS)))
async def test_an_untouched_form_changes_nothing(
    typed, admin_client: LoggedIn, conn, row: int
) -> None:
    row_id = typed[row]
    before = await stored(conn, row_id)
    edit = await admin_client.get(f"/typed/{row_id}/edit")
    assert edit.status_code == 200
    names = {name for name, _ in form_fields(edit.text)}
    assert {"blob", "addr", "words"}.isdisjoint(names)  # shown as a size, never edited
    assert {"i2", "amount", "f4", "docb", "tags", "at_tz", "feeling", "size"} <= names
    saved = await admin_client.http.post(f"/typed/{row_id}", data=as_posted(form_fields(edit.text)))
    assert saved.status_code == 303, saved.text
    assert await stored(conn, row_id) == before
    assert await audit_entries(conn, "typed", "update") == []


async def test_sizes_and_unknown_types_are_shown_not_decoded(typed, admin_client) -> None:
    page = await admin_client.get(f"/typed/{typed[0]}")
    assert page.status_code == 200
    assert "4 bytes" in page.text  # bytea: \xdeadbeef
    assert "deadbeef" not in page.text and "192.168.0.1" not in page.text
    # text content: quotes need no escaping there (attributes escape them)
    assert "日本" in page.text and 'very "happy"</span>' in page.text
    listing = await admin_client.get("/typed")
    assert listing.status_code == 200


UUID = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"
NESTED = '{"a": {"b": [true, 1.5, "日本"]}}'
# (field, what is typed, SQL giving the stored value as text, expected)
CHANGES = [
    ("i2", "-12", "i2::text", "-12"),
    ("i4", "2147483646", "i4::text", "2147483646"),
    ("i8", "-9223372036854775807", "i8::text", "-9223372036854775807"),
    ("amount", "-1,234.5", "amount::text", "-1234.500"),
    ("free", "1e-30", "free::text", "0.000000000000000000000000000001"),
    ("free", "Infinity", "free::text", "Infinity"),
    ("f4", "-Infinity", "f4::text", "-Infinity"),
    ("f8", "NaN", "f8::text", "NaN"),
    ("f8", "0.1", "f8::text", "0.1"),
    ("body", "x\r\ny", "body", "x\ny"),
    ("short", "ten chars!", "short", "ten chars!"),
    ("maybe", "false", "maybe::text", "false"),
    ("maybe", "true", "maybe::text", "true"),
    ("day", "2000-01-01 BC", "day::text", "2000-01-01 BC"),
    ("day", "-infinity", "day::text", "-infinity"),
    ("day", "2024-05-31", "day::text", "2024-05-31"),
    ("at", "2024-01-02 03:04:05.678", "at::text", "2024-01-02 03:04:05.678"),
    ("at_tz", "2024-01-02 03:04", "(at_tz AT TIME ZONE 'UTC')::text", "2024-01-02 03:04:00"),
    ("at_tz", "infinity", "at_tz::text", "infinity"),
    ("uid", UUID.upper(), "uid::text", UUID),
    ("feeling", "ok", "feeling::text", "ok"),
    ("size", "L", "size", "L"),
    ("doc", '{"k": ["é", null]}', "doc::jsonb::text", '{"k": ["é", null]}'),
    ("docb", NESTED, "docb::text", NESTED),
    ("docb", '"just text"', "docb::text", '"just text"'),
    ("tags", "x\r\nNULL\r\n y ", "tags::text", '{x,NULL," y "}'),
    ("nums", "5\r\nNULL\r\n-2147483648", "nums::text", "{5,NULL,-2147483648}"),
    ("nums", "", "nums::text", None),
]


@pytest.mark.parametrize(("field", "typed_text", "sql", "expected"), CHANGES)
async def test_a_changed_field_is_stored_as_typed(
    typed, admin_client: LoggedIn, conn, field, typed_text, sql, expected
) -> None:
    row_id = typed[0]
    edit = await admin_client.get(f"/typed/{row_id}/edit")
    data = form_dict(edit.text)
    data[field] = typed_text
    saved = await admin_client.http.post(f"/typed/{row_id}", data=data)
    assert saved.status_code == 303, field_error(saved.text, field)
    assert await conn.fetchval(f"SELECT {sql} FROM typed WHERE id = $1", row_id) == expected
    (entry,) = await audit_entries(conn, "typed", "update")
    changed = {k for k in entry["after"] if entry["after"][k] != entry["before"][k]}
    assert changed == {field}


async def test_a_checkbox_unticked_is_stored_false(typed, admin_client, conn) -> None:
    edit = await admin_client.get(f"/typed/{typed[0]}/edit")
    data = [(k, v) for k, v in form_fields(edit.text) if not (k == "flag" and v == "true")]
    saved = await admin_client.http.post(f"/typed/{typed[0]}", data=as_posted(data))
    assert saved.status_code == 303
    assert await conn.fetchval("SELECT flag FROM typed WHERE id = $1", typed[0]) is False


BAD = [
    ("i2", "32768"),
    ("i4", "2147483648"),
    ("i8", "9223372036854775808"),
    ("i8", "99999999999999999999999"),
    ("i4", "1.5"),
    ("amount", "1.0001"),
    ("amount", "1000000000"),
    ("amount", "Infinity"),
    ("f8", "fast"),
    ("body", "a\x00b"),
    ("short", "eleven char"),
    ("doc", "{bad"),
    ("docb", '{"a": NaN}'),
    ("docb", "[" * 5000),
    ("uid", "not-a-uuid"),
    ("day", "2024-02-30"),
    ("day", "31/12/2024"),
    ("at", "2024-13-01 00:00"),
    ("at_tz", "yesterday-ish"),
    ("feeling", "angry"),
    ("size", "XL"),
    ("maybe", "perhaps"),
    ("tags", "ok\r\nbad\x00"),
    ("nums", "1\r\nx"),
    ("nums", "1\r\n3000000000"),
]


@pytest.mark.parametrize(("field", "bad"), BAD)
async def test_bad_text_is_a_422_on_its_field(
    typed, admin_client: LoggedIn, conn, field, bad
) -> None:
    row_id = typed[0]
    before = await stored(conn, row_id)
    edit = await admin_client.get(f"/typed/{row_id}/edit")
    data = form_dict(edit.text)
    data[field] = bad
    refused = await admin_client.http.post(f"/typed/{row_id}", data=data)
    assert refused.status_code == 422, refused.text[:300]
    assert field_error(refused.text, field) != ""
    assert await stored(conn, row_id) == before
    created = await admin_client.http.post("/typed", data={**data, "version": ""})
    assert created.status_code == 422
    assert field_error(created.text, field) != ""
    assert await conn.fetchval("SELECT count(*) FROM typed") == len(EDGE_ROWS)
    check = await admin_client.post("/typed/validate", {"field": field, field: bad})
    assert check.status_code == 200 and field_error(check.text, field) != ""
