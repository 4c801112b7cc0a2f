"""CSV import through the real HTTP stack: parsing, validation, all-or-nothing, audit."""

from __future__ import annotations

import asyncpg

from tests.conftest import LoggedIn
from tests.csv_helpers import USERS_HEADER, table_rows, upload, user_lines


async def test_imports_quotes_newlines_commas_crlf_bom_and_unicode(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = (
        "\ufeffemail,username,full_name\r\n"
        'ann@example.com,ann,"Ann ""The Boss"" O\'Neil"\r\n'
        'bob@example.com,bob,"Bob\r\nSecond line, with comma"\r\n'
        "zoe@example.com,zoe,Zoë Ψ 東京\r\n"
    )
    response = await upload(admin_client, "users", content)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 3
    rows = {r["username"]: r for r in await table_rows(conn, "users")}
    assert rows["ann"]["full_name"] == 'Ann "The Boss" O\'Neil'
    assert rows["bob"]["full_name"] == "Bob\r\nSecond line, with comma"
    assert rows["zoe"]["full_name"] == "Zoë Ψ 東京"
    assert rows["zoe"]["is_active"] is True
