"""/healthz with the database up, really down, unreachable, and back; an exhausted pool is
busy, not down; the probe's own connection."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from admin import db, embedded
from admin.app import create_app
from admin.ops.health import DatabaseProbe
from admin.settings import Settings
from tests.cli import kill_everything_under, wait_until_gone
from tests.conftest import create_staff, log_in
from tests.live import free_port


@pytest.fixture
def own_server_dir() -> Iterator[Path]:
    """A directory for a dedicated embedded server; no process may outlive the test."""
    directory = Path(tempfile.mkdtemp(prefix="admin-health-", dir="/tmp"))
    yield directory
    kill_everything_under(directory)
    shutil.rmtree(directory, ignore_errors=True)


def _client(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.mark.slow
async def test_healthz_reports_a_stopped_database_and_recovers(
    own_server_dir: Path, settings: Settings
):
    server = await asyncio.to_thread(embedded.start, own_server_dir)
    stopped = False
    try:
        own = dataclasses.replace(settings, database_url=server.get_uri(), pool_min_size=1)
        pool = await db.create_pool(own)
        try:
            async with _client(create_app(own, pool=pool)) as http:
                up = await http.get("/healthz")
                assert up.status_code == 200
                assert up.json() == {"status": "ok", "database": "ok"}

                await asyncio.to_thread(embedded.stop, server)
                stopped = True
                # pg_ctl returns once the pid file is gone; the postmaster exits just after
                assert await asyncio.to_thread(wait_until_gone, own_server_dir) == []

                down = await http.get("/healthz")
                assert down.status_code == 503
                body = down.json()
                assert body["status"] == "error"
                assert body["database"] == "unavailable"
                assert body["reason"]  # the reason, e.g. "database unreachable: ..."
                assert down.headers["retry-after"].isdigit()
                assert down.headers["cache-control"] == "no-store"

                server = await asyncio.to_thread(embedded.start, own_server_dir)
                stopped = False
                again = await http.get("/healthz")
                assert again.status_code == 200
                assert again.json() == {"status": "ok", "database": "ok"}
        finally:
            await pool.close()
    finally:
        if not stopped:
            await asyncio.to_thread(embedded.stop, server)
    assert await asyncio.to_thread(wait_until_gone, own_server_dir) == []


@pytest.fixture
async def tiny_pool_app(settings: Settings) -> AsyncIterator[tuple[object, asyncpg.Pool]]:
    tiny = dataclasses.replace(settings, pool_min_size=1, pool_max_size=2, pool_acquire_timeout=0.3)
    pool = await db.create_pool(tiny)
    yield create_app(tiny, pool=pool), pool
    await pool.close()


async def test_exhausted_pool_answers_503_with_retry_after_then_recovers(tiny_pool_app):  # type: ignore[no-untyped-def]
    app, pool = tiny_pool_app
    async with pool.acquire() as conn:
        await create_staff(conn, "waiter", "staff")
    async with _client(app) as http:
        await log_in(http, "waiter")

        held = [await pool.acquire() for _ in range(2)]
        try:
            page = await http.get("/", headers={"Accept": "text/html"})
            assert page.status_code == 503
            assert page.headers["retry-after"] == str(db.PoolExhausted.retry_after)
            assert "Temporarily unavailable" in page.text
            assert "all database connections are busy" in page.text

            # a busy pool is load, not an outage: the database still answers
            async with _client(app) as anonymous:
                health = await anonymous.get("/healthz")
            assert health.status_code == 200
            assert health.json() == {
                "status": "ok",
                "database": "ok",
                "pool": "busy",
                "pool_in_use": 2,
                "pool_max": 2,
            }
        finally:
            for conn in held:
                await pool.release(conn)

        assert (await http.get("/")).status_code == 200
        assert (await http.get("/healthz")).status_code == 200


async def test_exhausted_pool_answers_plain_text_to_non_browsers(tiny_pool_app):  # type: ignore[no-untyped-def]
    app, pool = tiny_pool_app
    async with pool.acquire() as conn:
        await create_staff(conn, "script", "staff")
    async with _client(app) as http:
        await log_in(http, "script")
        held = [await pool.acquire() for _ in range(2)]
        try:
            response = await http.get("/", headers={"Accept": "application/json"})
        finally:
            for conn in held:
                await pool.release(conn)
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(db.PoolExhausted.retry_after)
    assert response.text.startswith("503 ")


# ---- a busy pool is not a down database


async def test_healthz_with_every_pooled_connection_held_is_ok_and_busy(settings: Settings):
    tiny = dataclasses.replace(settings, pool_min_size=2, pool_max_size=2, pool_acquire_timeout=5)
    pool = await db.create_pool(tiny)
    try:
        held = [await pool.acquire() for _ in range(2)]
        try:
            async with _client(create_app(tiny, pool=pool)) as http:
                answers = [await http.get("/healthz") for _ in range(5)]
        finally:
            for conn in held:
                await pool.release(conn)
    finally:
        await pool.close()
    for answer in answers:
        assert answer.status_code == 200
        assert answer.json() == {
            "status": "ok",
            "database": "ok",
            "pool": "busy",
            "pool_in_use": 2,
            "pool_max": 2,
        }


async def test_healthz_with_an_unreachable_database_is_503(settings: Settings, pool: asyncpg.Pool):
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    app = create_app(dataclasses.replace(settings, database_url=nowhere), pool=pool)
    async with _client(app) as http:
        response = await http.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
    assert response.headers["retry-after"].isdigit()


async def test_health_probe_keeps_one_connection_and_replaces_a_killed_one(
    database_url: str, conn: asyncpg.Connection
):
    probe = DatabaseProbe(database_url)
    count_probes = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'pg-admin-panel health'"
    )
    try:
        for _ in range(3):
            await probe.check()
        assert await conn.fetchval(count_probes) == 1
        await conn.fetchval(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'pg-admin-panel health' AND datname = current_database()"
        )
        await probe.check()  # a fresh connection, not an outage
        assert await conn.fetchval(count_probes) == 1
    finally:
        await probe.close()
    async with asyncio.timeout(30):
        while await conn.fetchval(count_probes) != 0:
            await asyncio.sleep(0.05)
