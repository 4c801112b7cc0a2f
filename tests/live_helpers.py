"""Arranging data and logged-in clients for tests against live servers."""

from __future__ import annotations

import asyncpg
import httpx

from tests.conftest import create_staff, log_in


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
