"""Blank lines in a file of several columns are skipped and counted, whatever ends the lines;
the problems after them keep their physical line numbers; in a one-column file a blank line
is an empty value, as COPY reads it; blank lines above the header are named, not taken for
an empty file."""

from __future__ import annotations

import dataclasses

import asyncpg
import httpx
import pytest

from tests.conftest import LoggedIn
from tests.csv_helpers import post_raw

HEADER = "username,email,full_name,is_active"
ROWS = ("ann,ann@example.com,Ann,true", "bob,bob@example.com,Bob,false", "cyd,cyd@x.org,Cyd,true")


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    # a table created by the test is read from the catalog at once
    return dataclasses.replace(settings, catalog_check_s=0.0)


async def _import(client: LoggedIn, table: str, content: str, query: str = "") -> httpx.Response:
    return await post_raw(client, f"/{table}/import?mode=insert{query}", content)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
async def test_blank_lines_are_skipped_and_counted(
    end: str, admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    lines = [HEADER, ROWS[0], "", ROWS[1], ROWS[2], "", ""]
    response = await _import(admin_client, "users", end.join(lines) + end)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"] == (
        "Imported 3 rows: 3 inserted, 0 updated, 0 unchanged. 3 blank lines skipped."
    )
    assert (body["rows"], body["blank_lines_skipped"]) == (3, 3)
    names = await conn.fetch("SELECT username FROM users ORDER BY username")
    assert [r["username"] for r in names] == ["ann", "bob", "cyd"]


async def test_a_file_without_blank_lines_says_nothing_of_them(admin_client: LoggedIn) -> None:
    response = await _import(admin_client, "users", "\n".join([HEADER, *ROWS]) + "\n")
    assert response.status_code == 200, response.text
    assert response.json()["blank_lines_skipped"] == 0
    assert "blank" not in response.json()["summary"]


async def test_problems_after_blank_lines_keep_their_line_numbers(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    lines = [HEADER, ROWS[0], "", "", "BAD NAME,bad@example.com,Bad,true", ROWS[1], "", "x,y"]
    response = await _import(admin_client, "users", "\n".join(lines) + "\n")
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["line"], e["message"]) for e in errors] == [
        (5, "is not allowed by the table's rule users_username_check"),
        (8, "has fewer fields than the header (2, not 4)"),
    ]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_a_dry_run_counts_the_blank_lines_too(admin_client: LoggedIn) -> None:
    response = await _import(
        admin_client, "users", "\n".join([HEADER, ROWS[0], "", ROWS[1]]) + "\n", "&dry_run=1"
    )
    assert response.status_code == 200, response.text
    assert response.json()["summary"].endswith(" 1 blank line skipped.")


async def test_in_a_one_column_file_a_blank_line_is_an_empty_value(
    admin_client: LoggedIn, conn: asyncpg.Connection
) -> None:
    await conn.execute(
        "CREATE TABLE labels (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text)"
    )
    response = await _import(admin_client, "labels", "name\nfirst\n\nthird\n")
    assert response.status_code == 200, response.text
    assert response.json()["blank_lines_skipped"] == 0
    rows = await conn.fetch("SELECT name FROM labels ORDER BY id")
    assert [r["name"] for r in rows] == ["first", None, "third"]


async def test_the_preview_counts_and_shows_no_blank_lines(admin_client: LoggedIn) -> None:
    response = await admin_client.http.post(
        "/users/import/preview",
        content=("\n".join([HEADER, ROWS[0], "", ROWS[1], ""]) + "\n").encode(),
        headers={"Content-Type": "text/csv", "X-CSRF-Token": admin_client.csrf},
    )
    assert response.status_code == 200, response.text
    assert "2 rows." in response.text
    assert response.text.count('<td class="wrap">') == 8


async def test_the_preview_names_a_blank_first_line(admin_client: LoggedIn) -> None:
    response = await admin_client.http.post(
        "/users/import/preview",
        content=("\n\n" + HEADER + "\n" + ROWS[0] + "\n").encode(),
        headers={"Content-Type": "text/csv", "X-CSRF-Token": admin_client.csrf},
    )
    assert response.status_code == 200, response.text
    assert "line 1 is blank: the first line must name the columns" in response.text
    assert "data-map" not in response.text
