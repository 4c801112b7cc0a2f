"""What change capture costs writers: capture on vs off, same server, same run.

    flock /tmp/bench.lock python bench/capture_cost.py --rows 1000000 --seconds 20

1. A CSV import of `--rows` users by COPY (the panel's import COPYs into a staging table,
   then writes users in one statement: the capture cost is in that statement; a bare COPY
   into users is the harshest ratio). Runs alternate off, on, off, on; best of each.
2. A write mix from 8 connections for `--seconds` each way: single-row updates of users,
   products and orders, inserts and deletes of categories, and 20-row order inserts
   (transactions/s on vs off, alternating halves).
Prints each figure and the on/off ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from csv_common import COLUMNS, database, write_users_csv

from admin import capture
from admin.resources import catalog
from admin.resources.registry import INTERNAL_TABLES


async def set_capture(conn: asyncpg.Connection, on: bool) -> None:
    infos = [
        i for i in await catalog.read_tables(conn, ["public"]) if i.name not in INTERNAL_TABLES
    ]
    if on:
        await capture.ensure(conn, infos)
        return
    for info in infos:
        if info.relkind == "r":
            for suffix, _, _ in capture.TRIGGERS:
                name = f"{capture.PREFIX}{suffix}"
                await conn.execute(f'DROP TRIGGER IF EXISTS {name} ON "{info.name}"')


async def import_once(conn: asyncpg.Connection, path: Path) -> float:
    await conn.execute("TRUNCATE users CASCADE")
    await conn.execute("CHECKPOINT")
    started = time.perf_counter()
    await conn.copy_to_table(
        "users", source=str(path), columns=COLUMNS.split(","), format="csv", header=True
    )
    return time.perf_counter() - started


async def seed(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE users, categories CASCADE")
    await conn.execute(
        "INSERT INTO users (username, email) SELECT 'user' || g, 'user' || g || '@x.io'"
        " FROM generate_series(1, 10000) g"
    )
    await conn.execute("INSERT INTO categories (name) VALUES ('Bench')")
    await conn.execute(
        "INSERT INTO products (sku, name, price, category_id)"
        " SELECT 'SKU-' || g, 'Product ' || g, g % 100, (SELECT min(id) FROM categories)"
        " FROM generate_series(1, 2000) g"
    )
    await conn.execute(
        "INSERT INTO orders (user_id, total) SELECT u.id, 1 FROM users u LIMIT 10000"
    )


async def write_mix(url: str, seconds: float, clients: int = 8) -> float:
    done = 0
    stop = time.monotonic() + seconds

    async def worker(seed_: int) -> None:
        nonlocal done
        rng = random.Random(seed_)
        conn = await asyncpg.connect(url)
        users = await conn.fetchval("SELECT array_agg(id) FROM users")
        products = await conn.fetchval("SELECT array_agg(id) FROM products")
        orders = await conn.fetchval("SELECT array_agg(id) FROM orders")
        try:
            while time.monotonic() < stop:
                pick = rng.random()
                if pick < 0.3:
                    await conn.execute(
                        "UPDATE users SET full_name = $1 WHERE id = $2",
                        f"n{rng.random()}",
                        rng.choice(users),
                    )
                elif pick < 0.55:
                    await conn.execute(
                        "UPDATE products SET stock = stock + 1 WHERE id = $1",
                        rng.choice(products),
                    )
                elif pick < 0.8:
                    await conn.execute(
                        "UPDATE orders SET status = 'paid' WHERE id = $1", rng.choice(orders)
                    )
                elif pick < 0.95:
                    async with conn.transaction():
                        key = await conn.fetchval(
                            "INSERT INTO categories (name) VALUES ('x') RETURNING id"
                        )
                        await conn.execute("DELETE FROM categories WHERE id = $1", key)
                else:
                    await conn.execute(
                        "INSERT INTO orders (user_id, total)"
                        " SELECT $1, 2 FROM generate_series(1, 20)",
                        rng.choice(users),
                    )
                done += 1
        finally:
            await conn.close()

    await asyncio.gather(*(worker(n) for n in range(clients)))
    return done / seconds


async def run(url: str, rows: int, seconds: float) -> None:
    conn = await asyncpg.connect(url)
    work = Path(tempfile.mkdtemp(prefix="capture-"))
    path = work / "users.csv"
    write_users_csv(path, rows)
    try:
        timings: dict[bool, list[float]] = {False: [], True: []}
        for on in (False, True, False, True):
            await set_capture(conn, on)
            timings[on].append(await import_once(conn, path))
        off, on_ = min(timings[False]), min(timings[True])
        print(f"COPY {rows:,} users: off {rows / off:,.0f} rows/s, on {rows / on_:,.0f} rows/s,"
              f" cost {100 * (on_ / off - 1):+.1f}%")  # fmt: skip
        await seed(conn)
        rates: dict[bool, list[float]] = {False: [], True: []}
        for on in (False, True, False, True):
            await set_capture(conn, on)
            rates[on].append(await write_mix(url, seconds / 2))
        off_rate, on_rate = sum(rates[False]) / 2, sum(rates[True]) / 2
        print(f"write mix, 8 connections: off {off_rate:,.0f} tx/s, on {on_rate:,.0f} tx/s,"
              f" cost {100 * (1 - on_rate / off_rate):+.1f}%")  # fmt: skip
        changes = await conn.fetchval("SELECT count(*) FROM resource_changes")
        print(f"resource_changes rows written: {changes:,}")
    finally:
        await conn.close()
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with database() as url:
        asyncio.run(run(url, args.rows, args.seconds))


if __name__ == "__main__":
    main()
