"""Abuse of /events against a real uvicorn: stream caps, replay depth, clients that leave
mid-replay or stop reading, and database connections failing under a stream."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from admin.live import sse_replay
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


async def released(http: httpx.AsyncClient, event_id: int) -> None:
    """Wait until the server has released `event_id` to live clients (a stream opened
    without a resume point starts at the newest released id)."""
    async with asyncio.timeout(20):
        while True:
            async with stream(http) as (_, frames):
                if int((await anext(frames)).id or 0) >= event_id:
                    return
            await asyncio.sleep(0.05)


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


# ---- replay depth


async def _read_until_order(frames: AsyncIterator[Message], seen: list[Message]) -> Message:
    async with asyncio.timeout(20):
        async for message in frames:
            seen.append(message)
            if message.event == "order":
                return message
    raise AssertionError(f"stream ended after {seen}")


async def test_resume_beyond_the_event_cap_gets_reload_then_goes_live(
    database_url: str, tmp_path: Path, db: asyncpg.Connection
):
    with _server(database_url, tmp_path, SSE_REPLAY_MAX_EVENTS="5") as server:
        http = await logged_in_client(server.url, database_url, "watcher")
        customer = await add_customer(db)
        await insert_orders(db, customer, 8)
        ids = await event_ids(db)
        # within the cap: exactly the missed events
        async with stream(http, last_id=ids[-4]) as (response, frames):
            seen: list[Message] = []
            for expected in ids[-3:]:
                assert int((await _read_until_order(frames, seen)).id or 0) == expected
            assert not [m for m in seen if m.event == "reload"]
        # beyond it, with the header or the query: a reload to the newest id, then live
        for last_id, query in ((ids[0], ""), (None, "?after=0")):
            async with stream(http, query, last_id) as (response, frames):
                assert response.status_code == 200
                seen = []
                await insert_orders(db, customer, 1)
                fresh = (await event_ids(db))[-1]
                order = await _read_until_order(frames, seen)
                reloads = [m for m in seen if m.event == "reload"]
                assert len(reloads) == 1 and int(reloads[0].id or 0) >= ids[-1]
                assert int(order.id or 0) == fresh
        await http.aclose()
        assert_quiet(server)


async def test_resume_whose_next_event_is_too_old_gets_reload(
    database_url: str, tmp_path: Path, db: asyncpg.Connection
):
    with _server(database_url, tmp_path, SSE_REPLAY_MAX_HOURS="1") as server:
        http = await logged_in_client(server.url, database_url, "watcher")
        customer = await add_customer(db)
        await insert_orders(db, customer, 3)
        ids = await event_ids(db)
        await db.execute(
            "UPDATE order_events SET created_at = now() - interval '2 hours' WHERE id = $1", ids[1]
        )
        await released(http, ids[-1])
        async with stream(http, last_id=ids[0]) as (_, frames):
            first = await anext(frames)
            assert first.event == "message" and first.retry
            reload = await anext(frames)
            assert reload.event == "reload" and int(reload.id or 0) >= ids[-1]
        # the next event is recent: replayed as usual
        async with stream(http, last_id=ids[1]) as (_, frames):
            order = await _read_until_order(frames, [])
            assert int(order.id or 0) == ids[2]
        await http.aclose()
        assert_quiet(server)


# ---- clients leaving mid-replay, clients that stop reading


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


@pytest.fixture
def replay_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with _server(database_url, tmp_path, SSE_MAX_PER_SESSION="1") as server:
        yield server


async def _waiting_on_events_lock(db: asyncpg.Connection) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg-admin-panel'"
            " AND datname = current_database() AND wait_event_type = 'Lock'"
        )
    )


async def test_a_replay_stops_when_its_client_leaves(
    replay_server: LiveServer, database_url: str, db: asyncpg.Connection
):
    await _many_events(db, 9000)
    http = await logged_in_client(replay_server.url, database_url, "watcher")
    reader, writer = await _raw_stream(replay_server, http, "?after=0")
    await reader.readexactly(1024)  # the replay has begun; the client now stops reading
    # any further replay query would wait behind this lock
    blocker = await asyncpg.connect(database_url)
    locked = blocker.transaction()
    await locked.start()
    await blocker.execute("LOCK TABLE order_events IN ACCESS EXCLUSIVE MODE")
    try:
        assert (await http.head("/events")).status_code == 429  # its one slot is held
        writer.close()
        # the stream ends (its slot frees) although the replay could not go on
        await status_until(http, 200, seconds=20)
        assert await _waiting_on_events_lock(db) == 0
    finally:
        await locked.rollback()
        await blocker.close()
    await http.aclose()
    assert_quiet(replay_server)


async def test_shutdown_ends_a_running_replay(
    replay_server: LiveServer, database_url: str, db: asyncpg.Connection
):
    await _many_events(db, 9000)
    http = await logged_in_client(replay_server.url, database_url, "watcher")
    reader, writer = await _raw_stream(replay_server, http, "?after=0")
    await reader.readexactly(1024)
    blocker = await asyncpg.connect(database_url)
    locked = blocker.transaction()
    await locked.start()
    await blocker.execute("LOCK TABLE order_events IN ACCESS EXCLUSIVE MODE")
    try:
        replay_server.process.send_signal(signal.SIGTERM)
        # within uvicorn's graceful period (3 s here): no task left to cancel
        exit_code = await asyncio.to_thread(replay_server.process.wait, 30)
        assert exit_code in (0, -signal.SIGTERM)
    finally:
        await locked.rollback()
        await blocker.close()
    writer.close()
    await http.aclose()
    log = replay_server.log()
    assert "Cancel" not in log and "graceful shutdown exceeded" not in log, log[-3000:]
    assert_quiet(replay_server)


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


# ---- database connections failing under a stream


async def _fail_reads_of_events_above(db: asyncpg.Connection, last_good: int) -> None:
    """From now on a panel connection reading an event above `last_good` is terminated,
    as a connection broken by a restart would fail (the listener is spared)."""
    await db.execute(
        f"""
        CREATE FUNCTION event_readable(event_id bigint) RETURNS boolean
        LANGUAGE plpgsql STABLE COST 10000 AS $$
        BEGIN
            IF event_id > {int(last_good)}
               AND current_setting('application_name') = 'pg-admin-panel' THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
                PERFORM pg_sleep(5);
            END IF;
            RETURN true;
        END $$;
        ALTER TABLE order_events RENAME TO order_events_data;
        CREATE VIEW order_events AS
            SELECT * FROM order_events_data WHERE event_readable(id);
        -- statistics, so that reads walk the primary key in id order as usual
        ANALYZE order_events_data;
        """
    )


async def test_connection_failures_answer_503_before_a_stream_and_end_it_after(
    database_url: str, tmp_path: Path, db: asyncpg.Connection
):
    with _server(database_url, tmp_path) as server:
        http = await logged_in_client(server.url, database_url, "watcher")
        customer = await add_customer(db)
        await insert_orders(db, customer, 3000)
        ids = await event_ids(db)
        # the first batch of the replay reads fine, the second one fails halfway
        readable = sse_replay.BATCH + sse_replay.BATCH // 2
        await released(http, ids[-1])
        await _fail_reads_of_events_above(db, ids[readable - 1])
        got: list[int] = []
        async with stream(http, "?after=0") as (response, frames):
            assert response.status_code == 200
            async with asyncio.timeout(30):
                async for message in frames:
                    if message.event == "order":
                        got.append(int(message.id or 0))
        # the stream ended properly, after whole events only, for the client to resume
        assert got and got == ids[: len(got)] and len(got) < readable
        # resuming past the readable rows fails before the response starts: 503
        for _ in range(3):
            refused = await http.get("/events", headers={"Last-Event-ID": str(ids[readable - 1])})
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) > 0
        # the panel's connections that failed were not handed out again
        assert (await http.get("/events/nothing")).status_code == 404
        assert (await http.head("/events")).status_code == 200
        await http.aclose()
        assert_quiet(server)
