"""Import behaviour that needs a real server: limits while streaming, disconnects, concurrency."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil

from tests.conftest import TEST_SECRET_KEY, LoggedIn, create_staff, log_in
from tests.csv_helpers import USERS_HEADER, upload, user_lines
from tests.live import LiveServer, live_server
from tests.live_helpers import (
    add_customer,
    event_ids,
    insert_orders,
    logged_in_client,
    spool_files,
    wait_until_spooling,
)
from tests.sse_client import Follower


async def _admin(server: LiveServer, conn: asyncpg.Connection) -> httpx.AsyncClient:
    await create_staff(conn, "boss", "admin")
    http = httpx.AsyncClient(base_url=server.url, timeout=60)
    http.headers["X-CSRF-Token"] = await log_in(http, "boss")
    return http


async def audit_outcome(conn: asyncpg.Connection) -> str:
    """The outcome of the (only) import's audit entry, once it is written."""
    async with asyncio.timeout(30):
        while True:
            outcome = await conn.fetchval(
                "SELECT after->>'outcome' FROM audit_log WHERE action = 'csv_import'"
            )
            if outcome is not None:
                return str(outcome)
            await asyncio.sleep(0.05)


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
                # the server is now receiving the file, waiting for the rest of the body
                await wait_until_spooling(server)
            assert await audit_outcome(conn) == "aborted"
            await _no_import_left(conn)
            assert await conn.fetchval("SELECT count(*) FROM users") == 0
            assert spool_files(server) == 0
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


async def _raw_post_start(
    server: LiveServer,
    http: httpx.AsyncClient,
    first_part: bytes,
    total_length: int,
    path: str = "/users/import",
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection and send an import request with only `first_part` of its body."""
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    address = urlsplit(server.url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        "Content-Type: text/csv\r\nAccept: application/json\r\n"
        f"Content-Length: {total_length}\r\n"
        f"Cookie: {cookie}\r\nX-CSRF-Token: {http.headers['X-CSRF-Token']}\r\n\r\n"
    )
    writer.write(head.encode() + first_part)
    await writer.drain()
    return reader, writer


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    async with asyncio.timeout(60):
        status_line = await reader.readline()
        rest = await reader.read()
    return int(status_line.split()[1]), rest


async def test_trickling_import_holds_no_transaction_and_live_orders_still_arrive(
    database_url: str, tmp_path: Path
):
    conn = await asyncpg.connect(database_url)
    try:
        with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
            http = await _admin(server, conn)
            customer = await add_customer(conn)
            watcher = await logged_in_client(server.url, database_url, "watcher")
            follower = Follower(watcher)
            follower.start()
            await follower.wait_open()
            content = (USERS_HEADER + "".join(user_lines(2000))).encode()
            half = len(content) // 2
            reader, writer = await _raw_post_start(server, http, content[:half], len(content))
            await wait_until_spooling(server)
            # no panel connection keeps an xid (which would hold back the live feed); other
            # requests may take one for an instant, so wait for a moment when none does
            async with asyncio.timeout(20):
                while await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name = 'pg-admin-panel'"
                    " AND (backend_xid IS NOT NULL OR state LIKE 'idle in transaction%')"
                ):
                    await asyncio.sleep(0.05)
            await insert_orders(conn, customer, 2)
            expected = await event_ids(conn)
            await follower.wait_for(expected, seconds=20)
            assert follower.ids == expected
            writer.write(content[half:])
            await writer.drain()
            status, body = await _read_response(reader)
            writer.close()
            assert status == 200, body
            assert b'"inserted":2000' in body.replace(b" ", b"")
            assert await conn.fetchval("SELECT count(*) FROM users") == 2001
            assert spool_files(server) == 0
            await follower.disconnect()
            await watcher.aclose()
            await http.aclose()
    finally:
        await conn.close()


async def _panel_transactions(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'pg-admin-panel'"
            " AND (backend_xid IS NOT NULL OR state LIKE 'idle in transaction%')"
        )
    )


async def _copying_into(conn: asyncpg.Connection, table: str) -> None:
    """Wait until the panel's COPY into `table` runs with a transaction id (it has written)."""
    async with asyncio.timeout(30):
        while not await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'pg-admin-panel' AND backend_xid IS NOT NULL"
            " AND query LIKE $1",
            f"COPY %{table}%FROM STDIN%",
        ):
            await asyncio.sleep(0.01)


async def _copy_waiting_for_a_lock(
    conn: asyncpg.Connection, table: str, seconds: float = 30
) -> bool:
    """Whether the panel's COPY into `table` waits for a lock, waiting up to `seconds` for it."""
    async with asyncio.timeout(seconds or None):
        while True:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg-admin-panel'"
                " AND wait_event_type = 'Lock' AND query LIKE $1",
                f"COPY %{table}%",
            )
            if waiting or not seconds:
                return bool(waiting)
            await asyncio.sleep(0.02)


async def _direct_import_answered(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rows: int
) -> None:
    """The import's answer: every row inserted, copied straight into the table."""
    status, body = await _read_response(reader)
    writer.close()
    assert status == 200, body
    compact = body.replace(b" ", b"")
    assert f'"inserted":{rows}'.encode() in compact and b'"direct":true' in compact, body


async def test_a_fast_upload_is_copied_as_it_arrives_and_a_pause_gives_the_transaction_up(
    database_url: str, tmp_path: Path
):
    conn = await asyncpg.connect(database_url)
    try:
        with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
            http = await _admin(server, conn)
            content = (USERS_HEADER + "".join(user_lines(60_000))).encode()  # about 3 MB
            first = len(content) * 2 // 3
            reader, writer = await _raw_post_start(server, http, content[:first], len(content))
            # the COPY into the table starts (and writes) before the rest of the file is sent
            await _copying_into(conn, "users")
            # the upload pauses: the import gives its transaction up while it waits
            async with asyncio.timeout(30):
                while await _panel_transactions(conn):
                    await asyncio.sleep(0.05)
            writer.write(content[first:])
            await writer.drain()
            await _direct_import_answered(reader, writer, 60_000)
            assert await conn.fetchval("SELECT count(*) FROM users") == 60_000
            assert await audit_outcome(conn) == "imported"
            assert spool_files(server) == 0
            await http.aclose()
    finally:
        await conn.close()


async def test_a_trickle_of_short_pauses_gives_the_transaction_up_too(
    database_url: str, tmp_path: Path
):
    """No single pause reaches a second, but the COPY's waits add up: the import gives its
    transaction up while the upload still trickles in, and imports it all once it is in.
    (A plain table, so that its COPY always outruns the trickle.)"""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE TABLE plain_rows (id bigint PRIMARY KEY, note text NOT NULL)")
        with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
            http = await _admin(server, conn)
            lines = "".join(f"{i},note number {i:08d} {'x' * 60}\n" for i in range(1, 200_001))
            content = ("id,note\n" + lines).encode()  # about 17 MB
            first = 3 << 20
            reader, writer = await _raw_post_start(
                server, http, content[:first], len(content), path="/plain_rows/import"
            )
            await _copying_into(conn, "plain_rows")
            # a megabyte (what the spool writes at once) every 0.8 s: the file grows more
            # often than once a second, and COPY reads each megabyte far faster than that
            rest = content[first:]
            pieces = [rest[i : i + (1 << 20)] for i in range(0, len(rest), 1 << 20)]
            sent = 0

            async def trickle() -> None:
                nonlocal sent
                for piece in pieces:
                    writer.write(piece)
                    await writer.drain()
                    sent += 1
                    await asyncio.sleep(0.8)

            sending = asyncio.create_task(trickle())
            async with asyncio.timeout(30):
                while await _panel_transactions(conn):
                    await asyncio.sleep(0.05)
            assert not sending.done(), "the upload ended before the import gave its transaction up"
            assert sent < len(pieces) - 2, (sent, len(pieces))
            await sending
            status, body = await _read_response(reader)
            writer.close()
            assert status == 200, body
            assert b'"inserted":200000' in body.replace(b" ", b"")
            assert await conn.fetchval("SELECT count(*) FROM plain_rows") == 200_000
            assert spool_files(server) == 0
            # operators see it happen
            scraped = (await http.get("/metrics")).text
            gave_up = 'path="direct_gave_up",table="plain_rows"} 1.0'
            assert f'admin_csv_paths_total{{kind="import",{gave_up}' in scraped, scraped[-3000:]
            assert "the upload slowed down" in server.log()
            await http.aclose()
    finally:
        await conn.close()


async def test_a_copy_waiting_for_a_lock_does_not_hold_the_upload_back(
    database_url: str, tmp_path: Path
):
    """The receiving keeps pace with the COPY (csvio.incoming), but a COPY that stops (here it
    waits for another transaction's row with the same key) sets the pace no longer: the
    client sends all of a file far larger than the lead, and the import ends once the
    other transaction has."""
    conn = await asyncpg.connect(database_url)
    holder = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE TABLE plain_rows (id bigint PRIMARY KEY, note text NOT NULL)")
        with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
            http = await _admin(server, conn)
            lines = "".join(f"{i},note number {i:08d} {'x' * 60}\n" for i in range(1, 400_001))
            content = ("id,note\n" + lines).encode()  # about 34 MB: four times the lead
            held = holder.transaction()
            await held.start()
            await holder.execute("INSERT INTO plain_rows VALUES (20000, 'held')")  # at 2 MB
            sending = asyncio.create_task(
                _raw_post_start(server, http, content, len(content), path="/plain_rows/import")
            )
            await _copy_waiting_for_a_lock(conn, "plain_rows")
            async with asyncio.timeout(60):
                # the whole body is taken while the COPY waits (drained: nothing held back)
                reader, writer = await sending
            assert await _copy_waiting_for_a_lock(conn, "plain_rows", seconds=0)
            await held.rollback()
            await _direct_import_answered(reader, writer, 400_000)
            assert await conn.fetchval("SELECT count(*) FROM plain_rows") == 400_000
            assert spool_files(server) == 0
            await http.aclose()
    finally:
        await holder.close()
        await conn.close()


async def test_a_stalled_upload_is_dropped_with_408_and_writes_nothing(
    database_url: str, tmp_path: Path
):
    conn = await asyncpg.connect(database_url)
    try:
        env = {"BODY_TIMEOUT_S": "1"}
        with live_server(database_url, TEST_SECRET_KEY, tmp_path, extra_env=env) as server:
            http = await _admin(server, conn)
            content = (USERS_HEADER + "".join(user_lines(100))).encode()
            reader, writer = await _raw_post_start(server, http, content[:500], len(content))
            status, body = await _read_response(reader)  # the rest never comes
            writer.close()
            assert status == 408
            assert b"too slowly" in body
            assert await audit_outcome(conn) == "refused"
            assert await conn.fetchval("SELECT count(*) FROM users") == 0
            await _no_import_left(conn)
            assert spool_files(server) == 0
            await http.aclose()
    finally:
        await conn.close()


async def test_a_fifty_megabyte_field_keeps_server_memory_flat(database_url: str, tmp_path: Path):
    conn = await asyncpg.connect(database_url)
    try:
        with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
            http = await _admin(server, conn)
            process = psutil.Process(server.process.pid)
            before = process.memory_info().rss
            peak = before
            stop = threading.Event()

            def watch() -> None:
                nonlocal peak
                while not stop.wait(0.01):
                    peak = max(peak, process.memory_info().rss)

            async def body() -> AsyncIterator[bytes]:
                yield b"username,email,full_name\nann,ann@example.com,"
                for _ in range(50):
                    yield b"x" * (1024 * 1024)
                yield b"\nbob,bob@example.com,Bob\n"

            watcher = threading.Thread(target=watch)
            watcher.start()
            try:
                response = await http.post(
                    "/users/import",
                    content=body(),
                    headers={"Content-Type": "text/csv", "Accept": "application/json"},
                )
            finally:
                stop.set()
                watcher.join()
            assert response.status_code == 422
            (error,) = response.json()["errors"]
            assert (error["line"], error["column"]) == (2, "full_name")
            assert error["value"] == "x" * 200 + "…"
            assert len(response.content) < 5_000
            growth_mb = (peak - before) / 2**20
            assert growth_mb < 60, f"server RSS grew by {growth_mb:.0f} MB"
            assert await conn.fetchval("SELECT count(*) FROM users") == 0
            await http.aclose()
    finally:
        await conn.close()


async def test_closing_the_page_during_the_write_rolls_the_import_back(
    database_url: str, tmp_path: Path
):
    conn = await asyncpg.connect(database_url)
    holder = await asyncpg.connect(database_url)
    try:
        with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
            http = await _admin(server, conn)
            content = (USERS_HEADER + "".join(user_lines(3000))).encode()
            token = uuid.uuid4().hex  # not shared with another run's import (csvio.progress)
            async with holder.transaction():
                # the import reads the whole file, then waits for this lock to write
                await holder.execute("LOCK TABLE users IN SHARE MODE")
                cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
                address = urlsplit(server.url)
                _reader, writer = await asyncio.open_connection(address.hostname, address.port)
                head = (
                    f"POST /users/import?progress={token} HTTP/1.1\r\n"
                    f"Host: {address.netloc}\r\nContent-Type: text/csv\r\n"
                    f"Content-Length: {len(content)}\r\nCookie: {cookie}\r\n"
                    f"X-CSRF-Token: {http.headers['X-CSRF-Token']}\r\n\r\n"
                )
                writer.write(head.encode() + content)
                await writer.drain()
                # the write (a one-pass COPY, or the INSERT after staging) waits for the lock
                waiting = (
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND backend_type = 'client backend'"
                    " AND (query LIKE 'COPY %' OR query LIKE 'INSERT %' OR query LIKE 'WITH %')"
                )
                async with asyncio.timeout(30):
                    while not await conn.fetchval(waiting):
                        await asyncio.sleep(0.05)
                state = await http.get(f"/users/import/progress/{token}")
                assert state.json()["phases"][0]["phase"] == "received"
                writer.close()  # the page is closed
                assert await audit_outcome(conn) == "aborted"
            await _no_import_left(conn)
            final = await http.get(f"/users/import/progress/{token}")
            assert final.json()["outcome"] == "cancelled"
            assert await conn.fetchval("SELECT count(*) FROM users") == 0
            await http.aclose()
    finally:
        await holder.close()
        await conn.close()
