"""/live/changes under faults, like the order feed's: PostgreSQL restarted, the server
restarted, two instances and two workers, and a login that changes under an open stream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import TEST_SECRET_KEY, create_staff, csrf_from, log_in
from tests.live import live_server
from tests.live_helpers import OUTAGE_ERRORS, add_customer, capture_ready, logged_in_client
from tests.sse_client import Follower
from tests.test_live_faults import _restart, own_postgres  # noqa: F401 (a fixture)


def follower(http: httpx.AsyncClient, query: str = "") -> Follower:
    return Follower(http, query=query, path="/live/changes", event="change")


async def change_ids(conn: asyncpg.Connection, after: int = 0) -> list[int]:
    rows = await conn.fetch("SELECT id FROM resource_changes WHERE id > $1 ORDER BY id", after)
    return [row["id"] for row in rows]


async def last_change(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM resource_changes"))


async def settle(f: Follower, expected: list[int]) -> None:
    await f.wait_for(expected, seconds=30)
    await asyncio.sleep(0.3)  # anything extra would arrive now


async def write(dsn: str, tag: str, count: int = 1) -> None:
    """Writes to three tables in one transaction, retrying through an outage like a shop."""
    async with asyncio.timeout(60):
        while True:
            try:
                conn = await asyncpg.connect(dsn, timeout=2)
            except OUTAGE_ERRORS:
                await asyncio.sleep(0.1)
                continue
            try:
                async with conn.transaction():
                    for n in range(count):
                        await conn.execute("INSERT INTO categories (name) VALUES ($1)", f"{tag}{n}")
                        await conn.execute(
                            "UPDATE users SET full_name = $1",
                            f"{tag}{n}",
                        )
                return
            except OUTAGE_ERRORS:
                await asyncio.sleep(0.1)
            finally:
                await conn.close()


def in_order_per_table(f: Follower) -> bool:
    by_table: dict[str, list[int]] = {}
    for event_id, data in zip(f.ids, f.data, strict=True):
        by_table.setdefault(json.loads(data)["table"], []).append(event_id)
    return all(ids == sorted(ids) for ids in by_table.values())


@pytest.mark.slow
async def test_postgres_restart_loses_nothing_and_repeats_nothing(
    own_postgres: tuple[object, str],  # noqa: F811
    tmp_path: Path,
):
    server, dsn = own_postgres
    conn = await asyncpg.connect(dsn)
    await add_customer(conn)
    base = await last_change(conn)
    await conn.close()
    with live_server(dsn, TEST_SECRET_KEY, tmp_path) as app_server:
        http = await logged_in_client(app_server.url, dsn, "watcher")
        conn = await asyncpg.connect(dsn)
        await capture_ready(conn, ("users", "categories"))
        await conn.close()
        # the streams stay open through the restart: the server's poller reconnects
        followers = [follower(http), follower(http, "?tables=users,categories")]
        for f in followers:
            f.start()
            await f.wait_open()
        await write(dsn, "before", 3)
        restart = asyncio.create_task(asyncio.to_thread(_restart, server))
        await asyncio.sleep(0.05)
        during = [asyncio.create_task(write(dsn, f"during{n}-")) for n in range(3)]
        await restart
        await asyncio.gather(*during)
        await write(dsn, "after", 3)
        conn = await asyncpg.connect(dsn)
        expected = await change_ids(conn, base)
        await conn.close()
        assert len(expected) == 2 * (3 + 3 + 3)
        for f in followers:
            await settle(f, expected)
            await f.disconnect()
            assert f.ids == expected
        await http.aclose()


async def test_server_restart_resumes_on_the_new_server_from_the_last_id(
    database_url: str, tmp_path: Path
):
    conn = await asyncpg.connect(database_url)
    await add_customer(conn)
    base = await last_change(conn)
    with live_server(database_url, TEST_SECRET_KEY, tmp_path) as first:
        http = await logged_in_client(first.url, database_url, "watcher")
        await capture_ready(conn, ("users", "categories"))
        f = follower(http)
        f.start()
        await f.wait_open()
        await write(database_url, "one", 2)
        await settle(f, await change_ids(conn, base))
        await f.disconnect()
    await write(database_url, "down", 2)  # while no server runs
    with live_server(database_url, TEST_SECRET_KEY, tmp_path) as second:
        # the same browser (its cookie, its last event id) comes back to the new server
        again = httpx.AsyncClient(base_url=second.url, cookies=http.cookies, timeout=10.0)
        resumed = follower(again)
        resumed.after = f.last_id
        resumed.start()
        await resumed.wait_open()
        await write(database_url, "two", 2)
        everything = await change_ids(conn, base)
        await settle(resumed, everything[len(f.ids) :])
        await resumed.disconnect()
        assert f.ids + resumed.ids == everything
        assert len(everything) == 12
        await again.aclose()
    await http.aclose()
    await conn.close()


async def test_two_instances_and_two_workers_each_stream_gets_everything_once_in_order(
    database_url: str, tmp_path: Path
):
    conn = await asyncpg.connect(database_url)
    await add_customer(conn)
    with (
        live_server(database_url, TEST_SECRET_KEY, tmp_path) as one,
        live_server(database_url, TEST_SECRET_KEY, tmp_path, workers=2) as two,
    ):
        http = await logged_in_client(one.url, database_url, "watcher")
        await capture_ready(conn, ("users", "categories"))
        other = httpx.AsyncClient(base_url=two.url, cookies=http.cookies, timeout=10.0)
        followers = [follower(http), follower(http, "?tables=users")]
        followers += [follower(other) for _ in range(4)]
        for f in followers:
            f.start()
            await f.wait_open()
        start = await last_change(conn)
        await asyncio.gather(*(write(database_url, f"w{n}-", 10) for n in range(4)))
        expected = await change_ids(conn, start)
        users = [
            row["id"]
            for row in await conn.fetch(
                "SELECT id FROM resource_changes WHERE id > $1 AND table_name = 'users'"
                " ORDER BY id",
                start,
            )
        ]
        assert len(expected) == 80 and len(users) == 40
        for f in followers:
            await settle(f, users if f.query else expected)
            await f.disconnect()
            assert f.ids == (users if f.query else expected)
            assert in_order_per_table(f)
        # a browser moving from one instance to the other resumes where it was
        mover = follower(http)
        mover.after = expected[29]
        mover.start()
        await settle(mover, expected[30:])
        await mover.disconnect()
        assert mover.ids == expected[30:]
        workers = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'pg-admin-panel-changes' AND datname = current_database()"
        )
        assert workers == 3  # one poller per process
        await other.aclose()
        await http.aclose()
    await conn.close()


async def test_a_role_change_narrows_an_open_stream_and_a_logout_ends_it(
    database_url: str, tmp_path: Path
):
    conn = await asyncpg.connect(database_url)
    await add_customer(conn)
    await conn.execute("CREATE TABLE secret_notes (id int PRIMARY KEY, body text)")
    await create_staff(conn, "boss", "admin")
    with live_server(database_url, TEST_SECRET_KEY, tmp_path) as server:
        http = httpx.AsyncClient(base_url=server.url, timeout=10.0)
        await log_in(http, "boss")
        await capture_ready(conn, ("users", "categories", "secret_notes"))
        f = follower(http)
        f.start()
        await f.wait_open()
        base = await last_change(conn)
        await conn.execute("INSERT INTO secret_notes VALUES (1, 'payroll')")
        await settle(f, await change_ids(conn, base))
        assert json.loads(f.data[-1])["table"] == "secret_notes"
        # demoted while the stream is open: it is closed and resumes with the new role
        await conn.execute("UPDATE staff SET role = 'staff' WHERE username = 'boss'")
        async with asyncio.timeout(20):
            while f.connects < 2:
                await asyncio.sleep(0.05)
        seen = len(f.ids)
        await conn.execute("INSERT INTO secret_notes VALUES (2, 'bonus')")
        await conn.execute(
            "UPDATE users SET full_name = 'after' WHERE id = (SELECT min(id) FROM users)"
        )
        users = await conn.fetchval(
            "SELECT max(id) FROM resource_changes WHERE table_name = 'users'"
        )
        await settle(f, [*f.ids[:seen], users])
        assert f.ids[seen:] == [users]
        assert all(json.loads(d)["table"] != "secret_notes" for d in f.data[seen:])
        # a logout elsewhere with a copy of this cookie ends the stream for good
        copy = httpx.AsyncClient(base_url=server.url, cookies=http.cookies, timeout=10.0)
        token = csrf_from((await copy.get("/")).text)
        assert (await copy.post("/logout", data={"csrf_token": token})).status_code == 303
        async with asyncio.timeout(20):
            while f.connects < 3 and f._open.is_set():
                await asyncio.sleep(0.05)
        connects = f.connects
        await conn.execute(
            "UPDATE users SET full_name = 'gone' WHERE id = (SELECT min(id) FROM users)"
        )
        await asyncio.sleep(1.0)
        await f.disconnect()
        assert f.connects == connects  # never admitted again
        assert f.ids[-1] == users
        await copy.aclose()
        await http.aclose()
    await conn.close()


async def _open_stream(port: int, cookie: str) -> tuple[bytes, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /live/changes HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n".encode()
    )
    await writer.drain()
    return await reader.readuntil(b"\r\n\r\n"), writer


async def test_a_crowd_of_browsers_reconnecting_at_once_fits_a_small_pool(
    database_url: str, tmp_path: Path
):
    # each stream's request uses one pooled connection, not one plus another for its
    # scope: with two per request, a crowd holding the first waits for the second
    env = {"POOL_MAX_SIZE": "2", "POOL_ACQUIRE_TIMEOUT": "2", "SSE_MAX_PER_SESSION": "100"}
    with live_server(database_url, TEST_SECRET_KEY, tmp_path, extra_env=env) as server:
        http = await logged_in_client(server.url, database_url, "watcher")
        cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
        port = int(server.url.rsplit(":", 1)[1])
        opened = await asyncio.gather(*(_open_stream(port, cookie) for _ in range(40)))
        statuses = [head.split(b" ", 2)[1] for head, _ in opened]
        for _, writer in opened:
            writer.close()
        assert statuses == [b"200"] * 40
        await http.aclose()
