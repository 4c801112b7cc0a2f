"""GET /events against a real uvicorn: framing, resume by id, several processes, shutdown."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests import pg
from tests.conftest import TEST_SECRET_KEY
from tests.live import LiveServer, live_server
from tests.live_helpers import add_customer, event_ids, insert_orders, logged_in_client
from tests.sse_client import Follower, messages


@pytest.fixture
def server(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    with live_server(database_url, TEST_SECRET_KEY, tmp_path) as running:
        yield running


@pytest.fixture
async def db(database_url: str):  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def test_stream_sends_retry_then_named_order_events_with_ids(
    server: LiveServer, database_url: str, db: asyncpg.Connection
):
    http = await logged_in_client(server.url, database_url, "watcher")
    customer = await add_customer(db)
    async with http.stream("GET", "/events", timeout=None) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["x-frame-options"] == "DENY"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        stream = messages(response)
        first = await anext(stream)
        assert first.retry is not None and first.retry > 0
        await insert_orders(db, customer, 2)
        got = []
        async with asyncio.timeout(10):
            async for message in stream:
                if message.event == "order":
                    got.append(message)
                if len(got) == 2:
                    break
    assert [int(m.id or 0) for m in got] == await event_ids(db)
    assert 'href="/orders/' in got[0].data
    await http.aclose()


async def test_head_on_events_answers_headers_without_streaming(
    server: LiveServer, database_url: str
):
    http = await logged_in_client(server.url, database_url, "watcher")
    async with asyncio.timeout(10):
        response = await http.head("/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content == b""
    await http.aclose()


async def test_resume_with_last_event_id_or_after_gets_exactly_the_rest(
    server: LiveServer, database_url: str, db: asyncpg.Connection
):
    http = await logged_in_client(server.url, database_url, "watcher")
    customer = await add_customer(db)
    await insert_orders(db, customer, 5)
    ids = await event_ids(db)
    for headers, query in (({"Last-Event-ID": str(ids[1])}, ""), ({}, f"?after={ids[1]}")):
        follower = Follower(http, query=query)
        follower.after = int(headers["Last-Event-ID"]) if headers else None
        follower.start()
        await follower.wait_open()
        await follower.wait_for(ids[2:])
        await insert_orders(db, customer, 1)
        expected = (await event_ids(db))[2:]
        await follower.wait_for(expected)
        await follower.disconnect()
        assert follower.ids == expected
    await http.aclose()


async def test_status_filter_sends_only_matching_events(
    server: LiveServer, database_url: str, db: asyncpg.Connection
):
    http = await logged_in_client(server.url, database_url, "watcher")
    customer = await add_customer(db)
    follower = Follower(http, query="?status=paid")
    follower.start()
    await follower.wait_open()
    await insert_orders(db, customer, 3)
    await db.execute("UPDATE orders SET status = 'paid' WHERE total = 2")
    paid = await db.fetchval("SELECT max(id) FROM order_events WHERE payload->>'status' = 'paid'")
    await follower.wait_for([paid])
    await asyncio.sleep(0.3)
    await follower.disconnect()
    assert follower.ids == [paid]
    await http.aclose()


async def test_events_needs_a_login_and_valid_parameters(server: LiveServer, database_url: str):
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        response = await anonymous.get("/events")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
    http = await logged_in_client(server.url, database_url, "watcher")
    for bad in ("?after=abc", "?after=-1", "?status=lost", f"?after={2**64}", "?after=%C2%B2"):
        assert (await http.get("/events" + bad)).status_code == 400, bad
    # b"\xb2" is "²" once read as latin-1: a digit to str.isdigit(), not to int()
    for header in (b"x1", b"\xb2", "\u0663".encode()):
        response = await http.get("/events", headers={"Last-Event-ID": header})
        assert response.status_code == 400, header
    await http.aclose()


async def test_two_servers_share_logins_and_both_get_every_event(
    database_url: str, tmp_path: Path, db: asyncpg.Connection
):
    with (
        live_server(database_url, TEST_SECRET_KEY, tmp_path) as one,
        live_server(database_url, TEST_SECRET_KEY, tmp_path) as two,
    ):
        http = await logged_in_client(one.url, database_url, "watcher")
        other = httpx.AsyncClient(base_url=two.url, cookies=http.cookies)
        assert (await other.get("/", follow_redirects=False)).status_code == 200
        followers = [Follower(http), Follower(other)]
        for follower in followers:
            follower.start()
            await follower.wait_open()
        customer = await add_customer(db)
        await insert_orders(db, customer, 4)
        await db.execute("UPDATE orders SET status = 'shipped'")
        expected = await event_ids(db)
        for follower in followers:
            await follower.wait_for(expected)
            await follower.disconnect()
            assert follower.ids == expected
        # a client moving from one server to the other resumes where it was
        mover = Follower(other)
        mover.after = expected[2]
        mover.start()
        await mover.wait_for(expected[3:])
        await mover.disconnect()
        assert mover.ids == expected[3:]
        await http.aclose()
        await other.aclose()


async def test_workers_2_every_client_gets_every_event(
    database_url: str, tmp_path: Path, db: asyncpg.Connection
):
    with live_server(database_url, TEST_SECRET_KEY, tmp_path, workers=2) as server:
        http = await logged_in_client(server.url, database_url, "watcher")
        followers = [Follower(http) for _ in range(6)]
        for follower in followers:
            follower.start()
            await follower.wait_open()
        customer = await add_customer(db)
        await insert_orders(db, customer, 3)
        expected = await event_ids(db)
        for follower in followers:
            await follower.wait_for(expected)
            await follower.disconnect()
            assert follower.ids == expected
        listeners = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'pg-admin-panel-listener' AND datname = current_database()"
        )
        assert listeners == 2
        await http.aclose()


async def test_shutdown_with_connected_clients_ends_promptly(server: LiveServer, database_url: str):
    http = await logged_in_client(server.url, database_url, "watcher")
    followers = [Follower(http) for _ in range(3)]
    for follower in followers:
        follower.start()
        await follower.wait_open()
    server.process.send_signal(signal.SIGINT)
    exit_code = await asyncio.to_thread(server.process.wait, 30)
    assert exit_code == 0
    # a stream that ignored shutdown would have kept the server until its graceful
    # timeout (3 s here), when uvicorn cancels what is left and says so: checked in the
    # log rather than by the clock, which a busy machine makes meaningless
    log = server.log()
    assert "graceful shutdown exceeded" not in log and "Cancel" not in log, log[-2000:]
    for follower in followers:
        await follower.disconnect()
    await http.aclose()


async def test_a_writer_left_open_in_another_database_does_not_hold_the_feed_back(
    server: LiveServer, database_url: str, server_url: str, db: asyncpg.Connection
):
    # an xid held open anywhere on the server is below every later snapshot's xmin; only
    # this database's transactions can hold event ids, so only they may hold events back
    elsewhere = await asyncpg.connect(pg.with_database(server_url, "postgres"))
    http = await logged_in_client(server.url, database_url, "watcher")
    try:
        open_writer = elsewhere.transaction()
        await open_writer.start()
        await elsewhere.fetchval("SELECT pg_current_xact_id()")
        customer = await add_customer(db)
        async with http.stream("GET", "/events", timeout=None) as response:
            stream = messages(response)
            await anext(stream)
            await insert_orders(db, customer, 2)
            got = []
            async with asyncio.timeout(10):
                async for message in stream:
                    if message.event == "order":
                        got.append(message)
                    if len(got) == 2:
                        break
        assert [int(m.id or 0) for m in got] == await event_ids(db)
        await open_writer.rollback()
    finally:
        await elsewhere.close()
        await http.aclose()
