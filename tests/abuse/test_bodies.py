"""Request bodies: too large, too slow or not UTF-8 is refused before anything is held or written.

The size and time probes run against a real uvicorn with a small pool: only there do
bodies arrive chunk by chunk, and only there does the server's memory mean anything.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from admin.access import Access, CsrfFrom, route
from admin.app import create_app
from admin.resources.registry import registry_of
from tests.conftest import TEST_SECRET_KEY, LoggedIn, _logged_in
from tests.live import LiveServer, live_server
from tests.live_helpers import logged_in_client
from tests.snapshot import snapshot

MB = 1024 * 1024
URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}
BOUNDARY = "formboundary7MA4YWxk"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
# what the server may grow by while refusing 100 MB (it started around 45 MB)
RSS_SLACK = 30 * MB


async def _repeated(piece: bytes, total: int) -> AsyncIterator[bytes]:
    """`total` bytes of `piece` in 64 KB chunks, never all in memory at once."""
    chunk = piece * (64 * 1024 // len(piece))
    for sent in range(0, total, len(chunk)):
        yield chunk[: total - sent]


async def _multipart_flood(total: int) -> AsyncIterator[bytes]:
    yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="username"\r\n\r\n'.encode()
    async for chunk in _repeated(b"x", total):
        yield chunk


def _multipart(fields: list[tuple[bytes, bytes]], charset: str = "") -> tuple[bytes, dict]:
    parts = [
        b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="' + name + b'"'
        b"\r\n\r\n" + value + b"\r\n"
        for name, value in fields
    ]
    body = b"".join(parts) + b"--" + BOUNDARY.encode() + b"--\r\n"
    content_type = MULTIPART["Content-Type"] + (f"; charset={charset}" if charset else "")
    return body, {"Content-Type": content_type}


def _rss(server: LiveServer) -> int:
    return int(psutil.Process(server.process.pid).memory_info().rss)


async def _refused_with_413(http: httpx.AsyncClient, url: str, **request: object) -> None:
    response = await http.post(url, **request)  # type: ignore[arg-type]
    assert response.status_code == 413, response.text
    assert "larger than" in response.text


async def test_big_anonymous_bodies_are_413_while_streaming(database_url: str, tmp_path: Path):
    total = 100 * MB
    with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            await http.get("/login")  # an anonymous session with a CSRF token
            before = _rss(server)
            declared = {**URLENCODED, "Content-Length": str(total)}
            await _refused_with_413(
                http, "/login", content=_repeated(b"username=a&", total), headers=declared
            )
            for headers in (URLENCODED, {"Content-Type": "text/plain"}, {}):
                await _refused_with_413(
                    http, "/login", content=_repeated(b"username=a&", total), headers=headers
                )
            await _refused_with_413(
                http, "/login", content=_multipart_flood(total), headers=MULTIPART
            )
            # a body the limit only catches once it is read (no Content-Length up front)
            await _refused_with_413(
                http, "/login", content=_repeated(b"a", 17 * 1024), headers=URLENCODED
            )
            grown = _rss(server) - before
            assert grown < RSS_SLACK, f"server grew by {grown / MB:.1f} MB"
            assert (await http.get("/login")).status_code == 200


async def test_staff_bodies_get_max_form_kb(database_url: str, tmp_path: Path):
    env = {"MAX_FORM_KB": "64", "MAX_ANONYMOUS_FORM_KB": "16"}
    conn = await asyncpg.connect(database_url)
    try:
        with live_server(database_url, TEST_SECRET_KEY, tmp_path, extra_env=env) as server:
            http = await logged_in_client(server.url, database_url, "clerk")
            token = (await http.get("/users/new")).text.split('name="csrf-token" content="')[1]
            token = token.split('"')[0]
            form = f"csrf_token={token}&username=big.one&email=big%40example.com&full_name="
            before = await snapshot(conn)
            for headers in (URLENCODED, MULTIPART, {"Content-Type": "text/plain"}):
                content = _repeated(form.encode() + b"x" * 100, 65 * 1024)
                await _refused_with_413(http, "/users", content=content, headers=headers)
            big = (form + "x" * 65 * 1024).encode()
            await _refused_with_413(http, "/users", content=big, headers=URLENCODED)
            assert await snapshot(conn) == before
            # over the anonymous limit but within the staff one: read, and then validated
            within = (form + "x" * 20 * 1024).encode()
            response = await http.post("/users", content=within, headers=URLENCODED)
            assert response.status_code == 422
            assert await snapshot(conn) == before
            await http.aclose()
    finally:
        await conn.close()


async def _trickle(body: bytes, piece: int, pause: float, started: asyncio.Event):
    """`body` in `piece`-byte bits, one every `pause` seconds (bounded by the body's size)."""
    for offset in range(0, len(body), piece):
        yield body[offset : offset + piece]
        if offset >= piece:
            started.set()  # the server has had the headers for at least one pause
        await asyncio.sleep(pause)


async def _post_slowly(http: httpx.AsyncClient, url: str, body: bytes, started: asyncio.Event):
    try:
        response = await http.post(
            url, content=_trickle(body, 4, 0.25, started), headers=URLENCODED
        )
    except httpx.TransportError:
        return "dropped"
    return response.status_code


@pytest.mark.parametrize(
    "env",
    [
        {"BODY_TIMEOUT_S": "2", "BODY_MIN_BYTES_PER_S": "0"},  # the total time limit
        {"BODY_TIMEOUT_S": "60", "BODY_MIN_BYTES_PER_S": "512"},  # the minimum rate
    ],
    ids=["timeout", "min-rate"],
)
async def test_slow_bodies_hold_no_connection_and_are_dropped(
    database_url: str, tmp_path: Path, env: dict[str, str]
):
    pool_size = 3
    env = {**env, "POOL_MAX_SIZE": str(pool_size), "POOL_ACQUIRE_TIMEOUT": "1"}
    conn = await asyncpg.connect(database_url)
    try:
        with live_server(database_url, TEST_SECRET_KEY, tmp_path, extra_env=env) as server:
            slow = await logged_in_client(server.url, database_url, "slow.clerk")
            viewer = await logged_in_client(server.url, database_url, "viewer")
            token = (await slow.get("/users/new")).text.split('name="csrf-token" content="')[1]
            token = token.split('"')[0]
            before = await snapshot(conn)
            trickling = []
            for number in range(2 * pool_size):
                body = (
                    f"csrf_token={token}&username=trickle{number}"
                    f"&email=trickle{number}%40example.com&full_name=Slow+Body+Number+{number}"
                ).encode()
                started = asyncio.Event()
                task = asyncio.create_task(_post_slowly(slow, "/users", body, started))
                trickling.append((task, started))
            for _task, started in trickling:
                await asyncio.wait_for(started.wait(), timeout=30)

            page = await viewer.get("/users")
            health = await viewer.get("/healthz")
            assert page.status_code == 200, page.text[:200]
            assert health.status_code == 200, health.text

            outcomes = await asyncio.gather(*(task for task, _ in trickling))
            assert set(outcomes) <= {408, "dropped"}, outcomes
            assert await snapshot(conn) == before
            assert await conn.fetchval("SELECT count(*) FROM users") == 0
            await slow.aclose()
            await viewer.aclose()
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("fields", "charset"),
    [
        ([(b"username", b"caf\xe9"), (b"email", b"cafe@example.com")], ""),
        (
            [(b"username", b"ok.name"), (b"email", b"a@example.com"), (b"full_name", b"\xc3\x28")],
            "",
        ),
        ([(b"usern\xe4me", b"ok.name"), (b"email", b"a@example.com")], ""),
        ([(b"username", b"ok.name"), (b"email", b"a@example.com")], "latin-1"),
    ],
    ids=["latin-1-value", "broken-utf8-value", "latin-1-field-name", "declared-latin-1"],
)
async def test_a_multipart_form_that_is_not_utf8_is_400(
    staff_client: LoggedIn, conn, fields, charset
):
    before = await snapshot(conn)
    for with_field in (True, False):
        extra = [(b"csrf_token", staff_client.csrf.encode())] if with_field else []
        body, headers = _multipart(fields + extra, charset)
        if not with_field:
            headers = {**headers, "X-CSRF-Token": staff_client.csrf}
        response = await staff_client.http.post("/users", content=body, headers=headers)
        assert response.status_code == 400, response.text
        assert "UTF-8" in response.text
    assert await snapshot(conn) == before


async def test_a_utf8_multipart_form_is_accepted(staff_client: LoggedIn, conn):
    body, headers = _multipart(
        [
            (b"csrf_token", staff_client.csrf.encode()),
            (b"username", b"jose"),
            (b"email", b"jose@example.com"),
            (b"full_name", "José Müller".encode()),
        ]
    )
    response = await staff_client.http.post("/users", content=body, headers=headers)
    assert response.status_code == 303, response.text
    name = await conn.fetchval("SELECT full_name FROM users WHERE username = 'jose'")
    assert name == "José Müller"


async def test_a_malformed_multipart_form_is_400(staff_client: LoggedIn, conn):
    before = await snapshot(conn)
    headers = {**MULTIPART, "X-CSRF-Token": staff_client.csrf}
    for content_type in (MULTIPART["Content-Type"], "multipart/form-data"):
        response = await staff_client.http.post(
            "/users",
            content=b"--elsewhere\r\nno headers here",
            headers={**headers, "Content-Type": content_type},
        )
        assert response.status_code == 400
    assert await snapshot(conn) == before


async def _connection_state(request: Request) -> Response:
    shared = getattr(request.state, "db_connection", None)
    pool = request.app.state.pool
    return PlainTextResponse(f"shared={shared is not None} idle={pool.get_idle_size()}")


async def test_streamed_upload_routes_get_no_held_connection(settings, pool, conn):
    app = create_app(settings, pool=pool)
    app.router.routes.insert(
        0,
        route(
            "/probe",
            _connection_state,
            access=Access.STAFF,
            methods=["POST"],
            csrf_from=CsrfFrom.ENDPOINT,
        ),
    )
    staff = await _logged_in(app, conn, "uploader", "staff")
    try:
        # the first request with a session reads the catalog and installs the change
        # capture on a pooled connection in the background, given back whenever it is done:
        # both done now, so that the probe counts the pool as it is
        await registry_of(app).refresh(conn)
        idle_before = pool.get_idle_size()
        response = await staff.http.post(
            "/probe", content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"}
        )
        assert response.status_code == 200
        assert response.text == f"shared=False idle={idle_before}"
    finally:
        await staff.http.aclose()


def _wait_until_closed_by_server(server: LiveServer, client_port: int) -> None:
    """Bounded wait for the server to let go of the connection from `client_port`."""
    process = psutil.Process(server.process.pid)
    for _ in range(200):
        ports = {c.raddr.port for c in process.net_connections() if c.raddr}
        if client_port not in ports:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server still holds the connection from port {client_port}")


async def test_a_client_leaving_mid_body_is_not_an_error(database_url: str, tmp_path: Path):
    with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
        address = urlsplit(server.url)
        for length in ("1000", None):
            framing = f"Content-Length: {length}" if length else "Transfer-Encoding: chunked"
            head = (
                f"POST /login HTTP/1.1\r\nHost: {address.netloc}\r\n{framing}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
            )
            part = b"username=a" if length else b"a\r\nusername=a\r\n"
            with socket.create_connection((address.hostname, address.port)) as sock:
                sock.sendall(head.encode() + part)
                client_port = sock.getsockname()[1]
            _wait_until_closed_by_server(server, client_port)
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/healthz")).status_code == 200
        assert "Traceback" not in server.log()
