"""A spare connection (db.spare) speeds one request up and never takes the pool's last free
connections from the others."""

import dataclasses

import asyncpg

from admin import db
from admin.settings import Settings


async def test_a_spare_connection_leaves_a_quarter_of_the_pool_free(settings: Settings) -> None:
    pool = await db.create_pool(dataclasses.replace(settings, pool_min_size=0, pool_max_size=8))
    held: list[asyncpg.Connection] = []
    given: list[bool] = []
    try:
        for _ in range(8):
            spare = await db.spare(pool)
            given.append(spare is not None)
            if spare is not None:
                assert await spare.fetchval("SELECT 1") == 1
                await db.checkin(pool, spare, None, 1.0)
            held.append(await pool.acquire())
        # two of eight stay free for other requests: a spare while three are free, none at two
        assert given == [True] * 6 + [False] * 2
        await pool.release(held.pop())
        await pool.release(held.pop())
        assert await db.spare(pool) is None
        await pool.release(held.pop())
        spare = await db.spare(pool)
        assert spare is not None
        await db.checkin(pool, spare, None, 1.0)
    finally:
        for conn in held:
            await pool.release(conn)
        await pool.close()
