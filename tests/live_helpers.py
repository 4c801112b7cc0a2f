"""Arranging data and logged-in clients for tests against live servers."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import asyncpg
import httpx

from admin import db
from tests.conftest import create_staff, log_in
from tests.live import LiveServer

# what a writer meets while the database is away and retries through, like a shop's code:
# every lost-connection error the app itself answers 503 for, a refusal, a timeout
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    TimeoutError,
    *db.CONNECTION_FAILURES,
)


async def add_customer(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO users (username, email) VALUES ('buyer', 'buyer@example.com') RETURNING id"
        )
    )


async def insert_orders(conn: asyncpg.Connection, user_id: int, count: int = 1) -> None:
    await conn.execute(
        "INSERT INTO orders (user_id, total) SELECT $1, g FROM generate_series(1, $2) AS g",
        user_id,
        count,
    )


async def event_ids(conn: asyncpg.Connection, after: int = 0) -> list[int]:
    rows = await conn.fetch("SELECT id FROM order_events WHERE id > $1 ORDER BY id", after)
    return [row["id"] for row in rows]


async def logged_in_client(base_url: str, database_url: str, username: str) -> httpx.AsyncClient:
    conn = await asyncpg.connect(database_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM staff WHERE username = $1", username):
            await create_staff(conn, username)
    finally:
        await conn.close()
    http = httpx.AsyncClient(base_url=base_url, timeout=10.0)
    await log_in(http, username)
    return http


def spool_files(server: LiveServer) -> int:
    """How many anonymous temporary files (import spools) the server process holds open."""
    count = 0
    for fd in Path(f"/proc/{server.process.pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(tempfile.gettempdir()) and target.endswith("(deleted)"):
            count += 1
    return count


async def wait_until_spooling(server: LiveServer) -> None:
    async with asyncio.timeout(30):
        while spool_files(server) == 0:
            await asyncio.sleep(0.02)


async def capture_ready(conn: asyncpg.Connection, tables: tuple[str, ...] = ("users",)) -> None:
    """Wait until the server installed change capture on `tables` (it does so in the
    background, after reading the catalog)."""
    async with asyncio.timeout(20):
        while True:
            found = await conn.fetchval(
                "SELECT count(DISTINCT tgrelid) FROM pg_trigger"
                " WHERE tgname = 'admin_live_update' AND tgrelid = any($1::regclass[])",
                list(tables),
            )
            if found == len(tables):
                return
            await asyncio.sleep(0.05)
