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


async def fetchval(database_url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()
