"""Abuse of /events against a real uvicorn: stream caps, clients that stop reading."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.live import LiveServer, live_server
from tests.live_helpers import add_customer, event_ids, insert_orders, logged_in_client
from tests.sse_client import Message, messages

UNFINISHED = "ASGI callable returned without completing response"


def _server(database_url: str, tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    return live_server(database_url, TEST_SECRET_KEY, tmp_path, extra_env=env)


def assert_quiet(server: LiveServer) -> None:
    """Nothing at error level: no traceback, no unfinished response, no 500."""
    log = server.log()
    assert UNFINISHED not in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert "ERROR" not in log, log[-3000:]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@contextlib.asynccontextmanager
async def stream(
    http: httpx.AsyncClient, query: str = "", last_id: int | None = None
) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[Message]]]:
    headers = {"Accept": "text/event-stream"}
    if last_id is not None:
        headers["Last-Event-ID"] = str(last_id)
    async with http.stream("GET", "/events" + query, headers=headers, timeout=None) as response:
        yield response, messages(response)


async def opened(http: httpx.AsyncClient, stack: contextlib.AsyncExitStack) -> Message:
    """Open a stream held by `stack`; returns its first frame (the opening)."""
    response, frames = await stack.enter_async_context(stream(http))
    assert response.status_code == 200
    # held until the stack closes: dropping the iterator would close the stream
    stack.push_async_callback(frames.aclose)  # type: ignore[attr-defined]
    async with asyncio.timeout(10):
        return await anext(frames)


async def status_until(http: httpx.AsyncClient, wanted: int, seconds: float = 10) -> int:
    """Poll /events (HEAD: no replay, the slot is freed when it returns) until `wanted`."""
    async with asyncio.timeout(seconds):
        while True:
            response = await http.head("/events")
            if response.status_code == wanted:
                return wanted
            await asyncio.sleep(0.05)


# ---- caps


async def test_streams_per_session_are_capped_and_an_ended_stream_frees_its_slot(
    database_url: str, tmp_path: Path
):
    with _server(database_url, tmp_path, SSE_MAX_PER_SESSION="3") as server:
        http = await logged_in_client(server.url, database_url, "watcher")
        other = await logged_in_client(server.url, database_url, "watcher")
        async with contextlib.AsyncExitStack() as stack:
            streams = [contextlib.AsyncExitStack() for _ in range(3)]
            for held in streams:
                await stack.enter_async_context(held)
                await opened(http, held)
            for query in ("", "?after=0", "?status=paid"):
                refused = await http.get("/events" + query)
                assert refused.status_code == 429, query
                assert int(refused.headers["retry-after"]) > 0
            # another login of the same member has slots of its own
            assert (await other.head("/events")).status_code == 200
            await streams[0].aclose()
            await status_until(http, 200)
            await opened(http, stack)
            assert (await http.get("/events")).status_code == 429
        # every slot is back once the streams end, whatever ended them
        await status_until(http, 200)
        await http.aclose()
        await other.aclose()
        assert_quiet(server)


async def test_streams_per_process_are_capped_with_503(database_url: str, tmp_path: Path):
    with _server(database_url, tmp_path, SSE_MAX_PER_PROCESS="2") as server:
        clients = [
            await logged_in_client(server.url, database_url, f"watcher{n}") for n in range(3)
        ]
        async with contextlib.AsyncExitStack() as stack:
            await opened(clients[0], stack)
            await opened(clients[1], stack)
            refused = await clients[2].get("/events?after=0")
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) > 0
        await status_until(clients[2], 200)
        for http in clients:
            await http.aclose()
        assert_quiet(server)


# ---- clients that stop reading


def _tight_socket(port: int) -> socket.socket:
    """A connection whose receive buffer is tiny, so a client that stops reading
    backs the server up quickly."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def _raw_stream(
    server: LiveServer, http: httpx.AsyncClient, query: str = ""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = int(server.url.rsplit(":", 1)[1])
    cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    reader, writer = await asyncio.open_connection(sock=_tight_socket(port))
    writer.write(
        f"GET /events{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return reader, writer


async def _read_to_the_end(reader: asyncio.StreamReader) -> bytes:
    """Everything the server still sends, until it ends the connection."""
    tail = b""
    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(60):
            while chunk := await reader.read(65536):
                tail = (tail + chunk)[-64:]
    return tail


async def _many_events(db: asyncpg.Connection, count: int) -> None:
    customer = await add_customer(db)
    for _ in range(count // 500):
        await insert_orders(db, customer, 500)


async def test_dropping_a_client_that_stopped_reading_ends_its_response_quietly(
    database_url: str, tmp_path: Path, db: asyncpg.Connection
):
    with _server(database_url, tmp_path) as server:
        http = await logged_in_client(server.url, database_url, "watcher")
        reader, writer = await _raw_stream(server, http)
        await reader.readuntil(b"retry:")
        # enough to fill every buffer between the server and a client reading nothing
        await _many_events(db, 10_000)
        customer = await db.fetchval("SELECT min(id) FROM users")
        async with stream(http) as (response, frames):
            assert response.status_code == 200
            # more releases, one at a time, than a client's queue holds: the silent
            # client is dropped as too slow while this one keeps reading
            for _ in range(300):
                await insert_orders(db, customer, 1)
                newest = (await event_ids(db))[-1]
                async with asyncio.timeout(20):
                    async for message in frames:
                        if message.event == "order" and int(message.id or 0) == newest:
                            break
        await _read_to_the_end(reader)
        writer.close()
        await http.aclose()
        assert_quiet(server)
