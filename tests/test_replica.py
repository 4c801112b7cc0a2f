"""Replica routing: reads go to the replica only when it is usable and has replayed the
reader's own last write (WAL positions); the lag clock. A real streaming replica is
exercised by the topology job (tests/topology/)."""

from __future__ import annotations

import asyncpg
import pytest

from admin import db, replica
from tests.conftest import LoggedIn

_WHO = "SELECT current_setting('application_name')"


@pytest.fixture
async def standby(app, settings):  # type: ignore[no-untyped-def]
    """A second pool on the same database standing in for the replica (its connections are
    told apart by application_name); its state is set by each test, not by the monitor."""
    pool = await db.create_pool(
        settings, server_settings={"application_name": "stand-in replica"}, min_size=0
    )
    app.state.replica = replica.Replica(pool=pool, max_lag_s=10.0, reachable=True, usable=True)
    yield app.state.replica
    app.state.replica = None
    await pool.close()


async def primary_position(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT (pg_current_wal_lsn() - '0/0')::bigint")


async def test_reads_go_to_a_usable_replica_and_the_page_says_so(
    standby: replica.Replica, admin_client: LoggedIn, conn
):
    standby.replay_lsn = await primary_position(conn)
    page = await admin_client.get("/audit")
    assert page.status_code == 200
    assert "Read from a replica" in page.text


async def test_a_skipped_replica_leaves_reads_on_the_primary(
    standby: replica.Replica, admin_client: LoggedIn
):
    standby.usable = False
    page = await admin_client.get("/audit")
    assert page.status_code == 200
    assert "Read from a replica" not in page.text


async def test_after_a_write_reads_stay_on_the_primary_until_the_replica_replays_it(
    standby: replica.Replica, admin_client: LoggedIn, conn
):
    standby.replay_lsn = await primary_position(conn)
    created = await admin_client.post(
        "/users", {"username": "ryw", "email": "ryw@example.com", "full_name": "R"}
    )
    assert created.status_code == 303
    assert replica.COOKIE in admin_client.http.cookies
    written = await primary_position(conn)

    page = await admin_client.get("/audit")
    assert "Read from a replica" not in page.text
    assert "ryw" in page.text  # its own write, read from the primary

    standby.replay_lsn = written
    page = await admin_client.get("/audit")
    assert "Read from a replica" in page.text


async def test_a_forged_position_cookie_is_ignored(
    standby: replica.Replica, admin_client: LoggedIn, conn
):
    standby.replay_lsn = await primary_position(conn)
    admin_client.http.cookies.set(replica.COOKIE, "99999999999.forged")
    page = await admin_client.get("/audit")
    assert "Read from a replica" in page.text


async def test_read_connection_is_the_replica_or_the_primary(standby: replica.Replica, app, conn):
    from starlette.requests import Request

    request = Request({"type": "http", "app": app, "headers": [], "method": "GET"})
    standby.replay_lsn = await primary_position(conn)
    async with replica.read_connection(request) as reader:
        assert await reader.fetchval(_WHO) == "stand-in replica"
    await replica.note_write(request, conn)
    standby.replay_lsn = request.state.wal_position - 1
    async with replica.read_connection(request) as reader:
        assert await reader.fetchval(_WHO) == "pg-admin-panel"


def test_lag_clock_measures_from_when_the_primary_passed_the_replay_position():
    clock = replica._LagClock()
    clock.add(100.0, 10)
    clock.add(101.0, 20)
    clock.add(102.0, 30)
    assert clock.lag(30, now=103.0) == 0.0
    assert clock.lag(25, now=103.0) == pytest.approx(1.0)  # 30 was first seen at 102
    assert clock.lag(15, now=103.0) == pytest.approx(2.0)
    assert clock.lag(5, now=103.0) == pytest.approx(3.0)
