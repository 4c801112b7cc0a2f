"""Faults around the panel's lifecycle: SIGTERM during a stalled export or upload, database
connections killed before and during requests, and simulate-orders losing its connection.
(/healthz under a busy pool: tests/test_health.py.)"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from admin.resources.registry import registry_of
from tests.cli import ROOT, cli_env, run_cli, start_serve
from tests.conftest import TEST_SECRET_KEY, LoggedIn, create_staff, log_in
from tests.csv_helpers import USERS_HEADER, upload, user_lines
from tests.live import live_server
from tests.live_helpers import wait_until_spooling

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
KILL_PANEL_BACKENDS = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
COPY_BACKENDS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND query LIKE 'COPY (SELECT%' AND state <> 'idle' AND pid <> pg_backend_pid()"
)


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    """Poll `condition` until it holds; fail after `seconds` (a bound, not a timing)."""
    async with asyncio.timeout(seconds):
        while not await condition():
            await asyncio.sleep(0.05)


@pytest.fixture
async def killer(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, outside the panel's pool, that survives the kills."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


# ---- item 8: SIGTERM while a client has stopped reading an export


async def _load_big_users_table(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO users (username, email, full_name) "
        "SELECT 'user' || g, 'user' || g || '@example.com', repeat('x', 150) "
        "FROM generate_series(1, 300000) g"
    )
    await create_staff(conn, "boss", "admin")


async def _sigterm_with_a_stalled_export(
    base_url: str,
    process: subprocess.Popen,
    killer: asyncpg.Connection,  # type: ignore[type-arg]
) -> int:
    """Start an export, stop reading it, SIGTERM the server; its exit code."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        await log_in(http, "boss")
        async with http.stream("GET", "/users/export.csv", headers=SAME_ORIGIN) as response:
            assert response.status_code == 200
            # held, not dropped: a dropped iterator would close the connection
            body = response.aiter_bytes()
            received = 0
            while received < 100_000:
                received += len(await anext(body))
            # the client keeps the connection open and reads no more
            await _until(lambda: _at_least(killer, COPY_BACKENDS, 1))
            process.send_signal(signal.SIGTERM)
            # the grace is a few seconds; the bound leaves room for a loaded machine but
            # not for a pool that never closes
            return await asyncio.to_thread(process.wait, 30)


async def _assert_export_aborted_and_released(killer: asyncpg.Connection) -> None:
    await _until(lambda: _count(killer, COPY_BACKENDS, 0))
    entry = await killer.fetchrow(
        "SELECT after FROM audit_log WHERE action = 'csv_export' ORDER BY id DESC LIMIT 1"
    )
    assert entry is not None
    assert json.loads(entry["after"])["outcome"] == "aborted"


@pytest.mark.slow
async def test_sigterm_during_a_stalled_export_exits_and_records_the_abort(
    database_url: str, tmp_path: Path, killer: asyncpg.Connection
):
    await _load_big_users_table(killer)
    with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
        code = await _sigterm_with_a_stalled_export(server.url, server.process, killer)
        # uvicorn re-raises SIGTERM once it has shut down cleanly
        assert code in (0, -signal.SIGTERM), server.log()
    assert "Pool.close() is taking" not in server.log()
    await _assert_export_aborted_and_released(killer)


@pytest.mark.slow
async def test_serve_uses_the_shutdown_grace_setting(
    database_url: str, tmp_path: Path, killer: asyncpg.Connection
):
    await _load_big_users_table(killer)
    env = cli_env(
        DATABASE_URL=database_url,
        SECRET_KEY=TEST_SECRET_KEY,
        ADMIN_DATA_DIR=str(tmp_path),
        SHUTDOWN_GRACE_S="1",
    )
    serving = start_serve(env, tmp_path)
    try:
        code = await _sigterm_with_a_stalled_export(serving.url, serving.process, killer)
    finally:
        serving.stop(signal.SIGKILL)
    assert code == 0, serving.stderr()
    await _assert_export_aborted_and_released(killer)


@pytest.mark.slow
async def test_sigterm_during_a_stalled_import_exits_and_writes_nothing(
    database_url: str, tmp_path: Path, killer: asyncpg.Connection
):
    await create_staff(killer, "boss", "admin")
    copying_in = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND query ILIKE 'COPY %FROM STDIN%' AND state <> 'idle'"
    )
    with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            token = await log_in(http, "boss")
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        part = (USERS_HEADER + "".join(user_lines(20_000))).encode()
        address = urlsplit(server.url)
        _reader, writer = await asyncio.open_connection(address.hostname, address.port)
        try:
            writer.write(
                (
                    "POST /users/import HTTP/1.1\r\n"
                    f"Host: {address.netloc}\r\nContent-Type: text/csv\r\n"
                    f"Content-Length: {len(part) * 10}\r\n"
                    f"Cookie: {cookie}\r\nX-CSRF-Token: {token}\r\n\r\n"
                ).encode()
                + part
            )
            await writer.drain()
            # the rest of the body never comes; the server is receiving it into its spool
            await wait_until_spooling(server)
            server.process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(server.process.wait, 30)
        finally:
            writer.close()
        assert code in (0, -signal.SIGTERM), server.log()
    await _until(lambda: _count(killer, copying_in, 0))
    assert await killer.fetchval("SELECT count(*) FROM users") == 0


def test_procfile_passes_the_shutdown_grace_to_uvicorn():
    web = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    assert "--timeout-graceful-shutdown ${SHUTDOWN_GRACE_S:-10}" in web


async def _count(conn: asyncpg.Connection, sql: str, wanted: int) -> bool:
    return int(await conn.fetchval(sql)) == wanted


async def _at_least(conn: asyncpg.Connection, sql: str, wanted: int) -> bool:
    # a big export may run as two COPYs at once (admin/csvio/export_split.py)
    return int(await conn.fetchval(sql)) >= wanted


# ---- item 9: connection-level failures answer 503 with Retry-After, never 500


def _unavailable_or_ok(response: httpx.Response, ok: set[int]) -> bool:
    if response.status_code == 503:
        return response.headers.get("retry-after", "").isdigit()
    return response.status_code in ok


async def test_requests_after_every_backend_is_killed_answer_503_or_succeed(
    admin_client: LoggedIn, killer: asyncpg.Connection
):
    await killer.execute("INSERT INTO users (username, email) VALUES ('ann', 'ann@example.com')")
    http = admin_client.http
    requests = [
        lambda: http.get("/"),
        lambda: http.get("/users"),
        lambda: http.get("/orders"),
        lambda: http.get("/users/1"),
        lambda: http.get("/users/export.csv", headers=SAME_ORIGIN),
        lambda: admin_client.post("/users/1/delete"),  # deleted once, then 404
        lambda: http.get("/healthz"),
    ]
    for attempt in range(3):
        assert await killer.fetchval(KILL_PANEL_BACKENDS) >= 0
        answers = [await send() for send in requests]
        bad = [(r.request.url.path, r.status_code) for r in answers if not
               _unavailable_or_ok(r, {200, 303, 404})]  # fmt: skip
        assert bad == [], f"attempt {attempt}: {bad}"
    # the pool has replaced its connections: the panel works again
    assert (await http.get("/users")).status_code == 200


async def _blocked_on(killer: asyncpg.Connection, table: str) -> bool:
    waiting = await killer.fetchval(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
        " WHERE NOT l.granted AND c.relname = $1",
        table,
    )
    return int(waiting) > 0


async def _killed_while_running(
    app: Starlette,
    killer: asyncpg.Connection,
    table: str,
    send: Callable[[], Awaitable[httpx.Response]],
) -> httpx.Response:
    """Send a request, let it block on `table`, terminate the panel's backends meanwhile."""
    # The catalog's background work (its read after the login, the change capture's
    # install) waits for the lock too: done first, so that what is blocked is the request
    await registry_of(app).refresh(killer)
    async with killer.transaction():
        await killer.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        request = asyncio.ensure_future(send())
        await _until(lambda: _blocked_on(killer, table))
        await killer.fetchval(KILL_PANEL_BACKENDS)
    return await request


RUNNING_REQUESTS = {
    # the guard's staff lookup
    "dashboard": ("staff", lambda c: c.http.get("/")),
    # handler queries
    "users list": ("users", lambda c: c.http.get("/users?q=ann")),
    "orders list": ("orders", lambda c: c.http.get("/orders")),
    "record": ("users", lambda c: c.http.get("/users/1")),
    "form post": (
        "users",
        lambda c: c.post("/users/1", {"username": "ann", "email": "a@b.cd", "version": "1"}),
    ),
    # the start of a streamed export
    "export": ("users", lambda c: c.http.get("/users/export.csv", headers=SAME_ORIGIN)),
}


@pytest.mark.parametrize("name", list(RUNNING_REQUESTS))
async def test_a_request_whose_connection_dies_mid_query_answers_503(
    name: str, app: Starlette, admin_client: LoggedIn, killer: asyncpg.Connection
):
    await killer.execute("INSERT INTO users (username, email) VALUES ('ann', 'ann@example.com')")
    table, send = RUNNING_REQUESTS[name]
    response = await _killed_while_running(app, killer, table, lambda: send(admin_client))
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    after = await admin_client.http.get("/users")
    assert _unavailable_or_ok(after, {200})
    if after.status_code == 503:
        assert (await admin_client.http.get("/users")).status_code == 200


async def test_login_whose_connection_dies_answers_503(app, client, killer: asyncpg.Connection):  # type: ignore[no-untyped-def]
    await create_staff(killer, "clerk")
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    form = {"username": "clerk", "password": "wrong password", "csrf_token": token.group(1)}
    response = await _killed_while_running(
        app, killer, "staff", lambda: client.post("/login", data=form)
    )
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()


async def test_import_whose_connection_dies_answers_503_and_writes_nothing(
    app: Starlette, admin_client: LoggedIn, killer: asyncpg.Connection
):
    content = USERS_HEADER + "".join(user_lines(2000))
    response = await _killed_while_running(
        app, killer, "users", lambda: upload(admin_client, "users", content)
    )
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert await killer.fetchval("SELECT count(*) FROM users") == 0
    imported = await killer.fetchval(
        "SELECT count(*) FROM audit_log"
        " WHERE action = 'csv_import' AND after->>'outcome' = 'imported'"
    )
    assert imported == 0
    again = await upload(admin_client, "users", content)
    assert again.status_code == 200, again.text
    assert await killer.fetchval("SELECT count(*) FROM users") == 2000


# ---- simulate-orders rides out a lost connection


@pytest.mark.slow
async def test_simulate_orders_reconnects_after_its_backend_is_killed(
    database_url: str, tmp_path: Path, killer: asyncpg.Connection
):
    env = cli_env(
        DATABASE_URL=database_url, SECRET_KEY=TEST_SECRET_KEY, ADMIN_DATA_DIR=str(tmp_path)
    )
    assert run_cli("demo-data", "--users", "50", "--orders", "50", env=env).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "admin", "simulate-orders", "--rate", "40"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        first = await asyncio.to_thread(process.stdout.readline)
        assert re.match(r"\d\d:\d\d:\d\d \+\d+ orders", first), first
        killed = await killer.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'pg-admin simulate' AND datname = current_database()"
        )
        assert killed == 1
        before = await killer.fetchval("SELECT count(*) FROM orders")
        lines = [await asyncio.to_thread(process.stdout.readline) for _ in range(4)]
        assert any(line.startswith("lost the database connection") for line in lines), lines
        await _until(lambda: _more_orders(killer, before))
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 30)
        rest = process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0, process.stderr.read() if process.stderr else ""
    assert rest.splitlines()[-1].startswith("stopped: ")


async def _more_orders(conn: asyncpg.Connection, than: int) -> bool:
    return int(await conn.fetchval("SELECT count(*) FROM orders")) > than


async def test_a_cancelled_export_response_releases_its_connection_at_once(
    app, admin_client: LoggedIn, pool: asyncpg.Pool, killer: asyncpg.Connection
):  # type: ignore[no-untyped-def]
    """What uvicorn does to a response still running when the grace period ends."""
    await killer.execute(
        "INSERT INTO users (username, email, full_name) "
        "SELECT 'user' || g, 'user' || g || '@example.com', repeat('x', 150) "
        "FROM generate_series(1, 50000) g"
    )
    cookie = "; ".join(f"{k}={v}" for k, v in admin_client.http.cookies.items())
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/users/export.csv", "raw_path": b"/users/export.csv",
        "query_string": b"", "root_path": "", "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode()),
                    (b"sec-fetch-site", b"same-origin")],
    }  # fmt: skip
    started = asyncio.Event()
    never = asyncio.Event()

    async def receive() -> dict[str, object]:
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.body":
            started.set()
            await never.wait()  # a client that stopped reading

    # the first request with a session reads the catalog and installs the change capture
    # on a pooled connection in the background: both done now, so that only the fixtures'
    # own connection is counted
    await registry_of(app).refresh(killer)
    in_use = pool.get_size() - pool.get_idle_size()
    response = asyncio.ensure_future(app(scope, receive, send))
    await started.wait()
    await _until(lambda: _at_least(killer, COPY_BACKENDS, 1))
    response.cancel()
    with pytest.raises(asyncio.CancelledError):
        await response
    # released by the time the cancelled response has returned, not when it is collected
    assert pool.get_size() - pool.get_idle_size() == in_use
    await _until(lambda: _count(killer, COPY_BACKENDS, 0))
    outcome = await killer.fetchval(
        "SELECT after->>'outcome' FROM audit_log WHERE action = 'csv_export'"
    )
    assert outcome == "aborted"
