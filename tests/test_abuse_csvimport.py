"""CSV import under hostile or careless files: ids, end markers, line ends, values, limits."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator

import asyncpg
import httpx

from admin.app import create_app
from admin.settings import Settings
from tests.conftest import LoggedIn, log_in
from tests.csv_helpers import USERS_HEADER, upload, user_lines


def _errors(response: httpx.Response) -> list[tuple[int | None, str | None, str | None]]:
    return [(e["line"], e["column"], e["value"]) for e in response.json()["errors"]]


# ---- item 4: CR-only line ends


async def test_cr_only_file_larger_than_the_header_limit_imports(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = (USERS_HEADER + "".join(user_lines(2000))).replace("\n", "\r")
    assert len(content) > 64 * 1024
    response = await upload(admin_client, "users", content)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2000
    assert await conn.fetchval("SELECT count(*) FROM users") == 2000


async def test_cr_only_file_reports_physical_lines(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = (
        'username,email,full_name\r"ann",ann@example.com,"two\rlines"\rbob,bob@x.org,B\r'
        "bad user,c@x.org,C\r"
    )
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422
    assert _errors(response) == [(5, "username", "bad user")]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


# ---- header limits


async def test_a_ten_megabyte_header_line_is_refused(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = b"username,email," + b"a" * (10 * 1024 * 1024) + b"\nann,a@x.org,x\n"
    response = await upload(admin_client, "users", content)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert "header row is longer than 65536 bytes" in error["message"]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_a_header_arriving_a_byte_at_a_time_is_read(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    content = ("\ufeff" + USERS_HEADER + "".join(user_lines(3))).encode()

    async def bytewise() -> Iterator[bytes]:  # type: ignore[misc]
        for index in range(len(content)):
            yield content[index : index + 1]

    response = await admin_client.http.post(
        "/users/import",
        content=bytewise(),
        headers={
            "Content-Type": "text/csv",
            "Accept": "application/json",
            "X-CSRF-Token": admin_client.csrf,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 3


# ---- item 6 (timeout): the database part is bounded by IMPORT_TIMEOUT_S too


async def test_an_import_past_its_time_limit_is_cancelled_and_writes_nothing(
    settings: Settings, pool: asyncpg.Pool, conn: asyncpg.Connection, database_url: str
):
    quick = dataclasses.replace(settings, import_timeout_s=2.0)
    app = create_app(quick, pool=pool)
    from tests.conftest import create_staff

    await create_staff(conn, "boss", "admin")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    token = await log_in(http, "boss")
    blocker = await asyncpg.connect(database_url)
    try:
        locked = blocker.transaction()
        await locked.start()
        await blocker.execute("LOCK TABLE users IN SHARE MODE")  # the INSERT has to wait
        async with asyncio.timeout(60):  # without a limit, the import would wait forever
            response = await http.post(
                "/users/import",
                content=(USERS_HEADER + "".join(user_lines(3))).encode(),
                headers={"Content-Type": "text/csv", "X-CSRF-Token": token},
            )
        await locked.rollback()
    finally:
        await blocker.close()
    assert response.status_code == 408, response.text
    assert "did not finish within 2 s" in response.text
    assert await conn.fetchval("SELECT count(*) FROM users") == 0
    entry = await conn.fetchval(
        "SELECT after FROM audit_log WHERE action = 'csv_import' ORDER BY id DESC LIMIT 1"
    )
    entry = json.loads(entry) if isinstance(entry, str) else entry
    assert entry["outcome"] == "refused"
    again = await http.post(
        "/users/import",
        content=(USERS_HEADER + "".join(user_lines(3))).encode(),
        headers={"Content-Type": "text/csv", "X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert again.status_code == 200, again.text
    await http.aclose()
