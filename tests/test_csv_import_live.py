"""Import behaviour that needs a real server: limits while streaming, disconnects, concurrency."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from tests.conftest import TEST_SECRET_KEY, LoggedIn, create_staff, log_in
from tests.csv_helpers import USERS_HEADER, upload, user_lines
from tests.live import LiveServer, live_server


async def _admin(server: LiveServer, conn: asyncpg.Connection) -> httpx.AsyncClient:
    await create_staff(conn, "boss", "admin")
    http = httpx.AsyncClient(base_url=server.url, timeout=60)
    http.headers["X-CSRF-Token"] = await log_in(http, "boss")
    return http


async def _no_import_left(conn: asyncpg.Connection) -> None:
    for _ in range(100):
        busy = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%csv_import_stage%'"
            " AND state <> 'idle' AND pid <> pg_backend_pid()"
        )
        staged = await conn.fetchval(
            "SELECT count(*) FROM pg_class WHERE relname = 'csv_import_stage'"
        )
        if busy == 0 and staged == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"import still running ({busy}) or staging tables left ({staged})")


async def test_body_over_the_limit_while_streaming_is_413(database_url: str, tmp_path: Path):
    conn = await asyncpg.connect(database_url)
    try:
        env = {"MAX_UPLOAD_MB": "1"}
        with live_server(database_url, TEST_SECRET_KEY, tmp_path, extra_env=env) as server:
            http = await _admin(server, conn)

            async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length up front
                yield USERS_HEADER.encode()
                for start in range(0, 40_000, 1000):
                    yield "".join(user_lines(1000, start)).encode()

            response = await http.post(
                "/users/import", content=body(), headers={"Content-Type": "text/csv"}
            )
            assert response.status_code == 413
            await http.aclose()
        assert await conn.fetchval("SELECT count(*) FROM users") == 0
        await _no_import_left(conn)
        outcome = await conn.fetchval(
            "SELECT after->>'outcome' FROM audit_log WHERE action = 'csv_import'"
        )
        assert outcome == "refused"
    finally:
        await conn.close()


async def test_client_disconnecting_mid_upload_writes_nothing(database_url: str, tmp_path: Path):
    conn = await asyncpg.connect(database_url)
    try:
        with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
            http = await _admin(server, conn)
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
            token = http.headers["X-CSRF-Token"]
            await http.aclose()
            part = (USERS_HEADER + "".join(user_lines(20_000))).encode()
            address = urlsplit(server.url)
            with socket.create_connection((address.hostname, address.port)) as sock:
                head = (
                    "POST /users/import HTTP/1.1\r\n"
                    f"Host: {address.netloc}\r\n"
                    "Content-Type: text/csv\r\n"
                    f"Content-Length: {len(part) * 10}\r\n"
                    f"Cookie: {cookie}\r\nX-CSRF-Token: {token}\r\n\r\n"
                )
                sock.sendall(head.encode() + part)
                # the server is now inside COPY, waiting for the rest of the body
                for _ in range(100):
                    copying = await conn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE query LIKE 'COPY%csv_import_stage%'"
                    )
                    if copying:
                        break
                    await asyncio.sleep(0.05)
                assert copying == 1
            await _no_import_left(conn)
            assert await conn.fetchval("SELECT count(*) FROM users") == 0
            outcome = await conn.fetchval(
                "SELECT after->>'outcome' FROM audit_log WHERE action = 'csv_import'"
            )
            assert outcome == "aborted"
    finally:
        await conn.close()


async def test_two_imports_at_once_are_both_correct(database_url: str, tmp_path: Path):
    conn = await asyncpg.connect(database_url)
    try:
        with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
            http = await _admin(server, conn)
            first = (USERS_HEADER + "".join(user_lines(30_000, 0))).encode()
            second = (USERS_HEADER + "".join(user_lines(30_000, 30_000))).encode()
            clash = (USERS_HEADER + "".join(user_lines(10, 100))).encode()

            async def send(content: bytes) -> httpx.Response:
                return await http.post(
                    "/users/import",
                    content=content,
                    headers={"Content-Type": "text/csv", "Accept": "application/json"},
                )

            one, two = await asyncio.gather(send(first), send(second))
            assert (one.status_code, two.status_code) == (200, 200)
            assert one.json()["inserted"] == two.json()["inserted"] == 30_000
            assert await conn.fetchval("SELECT count(*) FROM users") == 60_000
            three = await send(clash)
            assert three.status_code == 422
            errors = three.json()["errors"]
            assert len(errors) == 20  # username and email of each of the 10 rows
            assert {"user0000100", "user100@example.com"} <= {e["value"] for e in errors}
            await http.aclose()
        assert await conn.fetchval("SELECT count(*) FROM users") == 60_000
    finally:
        await conn.close()


async def test_bad_row_deep_in_a_large_file_is_found_by_line(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    rows = 200_000
    lines = [USERS_HEADER]
    extra = 0
    for i in range(rows):
        if i % 1000 == 0:  # multi-line quoted names push later rows down by one line each
            lines.append(f'user{i:07d},user{i}@example.com,"Line one\nline two, {i}",true\n')
            extra += 1
        elif i == rows - 7:
            bad_line = len(lines) + 1 + extra
            lines.append(f"user{i:07d},user{i}@example.com,User,perhaps\n")
        else:
            lines.append(f"user{i:07d},user{i}@example.com,User {i},true\n")
    response = await upload(admin_client, "users", "".join(lines))
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["line"], error["column"], error["value"]) == (bad_line, "is_active", "perhaps")
    assert await conn.fetchval("SELECT count(*) FROM users") == 0
