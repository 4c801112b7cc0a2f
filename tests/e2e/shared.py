"""What the browser tests share: the two widths every page is tried at, and one-shot SQL on
the test database (seeding rows, reading what a page wrote)."""

from __future__ import annotations

import asyncpg

# desktop and phone
SIZES = ({"width": 1280, "height": 800}, {"width": 390, "height": 844})


async def fetch(database_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def seed_users(database_url: str) -> int:
    """Thirty users named user1..user30 and John Smith (`jsmith`), whose id is returned."""
    return int(
        await fetchval(
            database_url,
            """
            WITH many AS (
                INSERT INTO users (username, email, full_name)
                SELECT 'user' || g, 'user' || g || '@example.com', 'Person ' || g
                FROM generate_series(1, 30) AS g
            )
            INSERT INTO users (username, email, full_name)
            VALUES ('jsmith', 'john@smith.example', 'John Smith') RETURNING id
            """,
        )
    )


async def fetchval(database_url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()
