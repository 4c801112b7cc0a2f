"""demo-data and simulate-orders: realistic data for trying the panel and benchmarking it."""

from __future__ import annotations

import argparse
import asyncio
import time
from array import array
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from admin import simulate
from admin.cli_support import CommandError, database
from admin.demo_rows import OrderChunks, UserChunks
from admin.migrations import migrate
from admin.settings import Settings


def add_commands(commands: Any) -> None:
    demo = commands.add_parser("demo-data", help="load realistic fake users and orders (COPY)")
    demo.add_argument("--users", type=_count, default=10_000, help="users to add")
    demo.add_argument("--orders", type=_count, default=20_000, help="orders to add")
    demo.set_defaults(handler=cmd_demo_data)

    sim = commands.add_parser("simulate-orders", help="create orders and status changes")
    sim.add_argument("--rate", type=_rate, default=2.0, help="changes per second")
    sim.set_defaults(handler=simulate.cmd_simulate_orders)


def _count(raw: str) -> int:
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {raw!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _rate(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {raw!r}") from None
    if not 0 < value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be between 0 and 10000, got {raw}")
    return value


def cmd_demo_data(settings: Settings, args: argparse.Namespace) -> int:
    with database(settings) as ready:
        asyncio.run(load_demo_data(ready.database_url or "", users=args.users, orders=args.orders))
    return 0


# Below this many rows a load keeps the indexes: rebuilding them would cost more.
REBUILD_MIN_ROWS = 100_000


async def load_demo_data(
    dsn: str,
    *,
    users: int,
    orders: int,
    seed: int | None = None,
    rebuild_min_rows: int = REBUILD_MIN_ROWS,
) -> None:
    """Append `users` users, then `orders` orders (one transaction per table); prints rows/s.

    One transaction per table keeps the lock a large load takes (see below) to the time of
    that table's own load.
    """
    # no named statements: DATABASE_URL may be a transaction pooler (PgBouncer)
    conn = await asyncpg.connect(
        dsn, server_settings={"application_name": "pg-admin demo-data"}, statement_cache_size=0
    )
    try:
        await migrate(conn)
        first_id = await _reserve_user_ids(conn, users)
        started = time.perf_counter()
        if users:
            async with conn.transaction():
                await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
                async with _indexes_rebuilt_if_large(conn, "users", users, rebuild_min_rows):
                    chunks = UserChunks(first_id, users, seed=seed)
                    await _copy(conn, "users", UserChunks.COLUMNS, chunks)
            await conn.execute("ANALYZE users")
        if orders:
            async with conn.transaction():
                await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
                user_count, user_id_at = await _user_picker(conn)
                if user_count == 0:
                    raise CommandError("no users to place orders for: add some with --users N")
                async with _indexes_rebuilt_if_large(conn, "orders", orders, rebuild_min_rows):
                    chunks = OrderChunks(orders, user_count, user_id_at, seed=seed)
                    await _copy(conn, "orders", OrderChunks.COLUMNS, chunks)
            await conn.execute("ANALYZE orders")
        elapsed = time.perf_counter() - started
        print(f"done: {users + orders:,} rows in {elapsed:.1f} s", flush=True)
    except asyncpg.UniqueViolationError as exc:
        raise CommandError(f"{exc.detail or exc}; nothing was loaded, run it again") from None
    finally:
        await conn.close()


@asynccontextmanager
async def _indexes_rebuilt_if_large(
    conn: asyncpg.Connection, table: str, adding: int, min_rows: int
) -> AsyncIterator[None]:
    """Drop the table's indexes (all but those behind constraints) for a large load and build
    them again afterwards, in the caller's transaction.

    Building an index once over the loaded rows is several times faster than updating it row
    by row (the trigram index most of all). DROP INDEX locks the table until the transaction
    ends, so concurrent readers wait for the load instead of ever seeing it without its
    unique indexes; small loads skip this and leave the table readable throughout.
    """
    existing = await conn.fetchval(
        "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = $1::regclass", table
    )
    if adding < min_rows or adding < existing:
        yield
        return
    indexes = await conn.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        WHERE i.indrelid = $1::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        table,
    )
    for index in indexes:
        await conn.execute(f"DROP INDEX {index['name']}")
    yield
    started = time.perf_counter()
    for index in indexes:
        await conn.execute(index["definition"])
    elapsed = time.perf_counter() - started
    print(f"{table}: rebuilt {len(indexes)} indexes in {elapsed:.1f} s", flush=True)


async def _reserve_user_ids(conn: asyncpg.Connection, count: int) -> int:
    """Move the users id sequence past `count` ids and return the first of them.

    The lock makes the reservation atomic with respect to concurrent inserts, which take
    their ids from the same sequence; it is held only for this short transaction.
    """
    async with conn.transaction():
        await conn.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        first = await conn.fetchval(
            """
            SELECT greatest(
                (SELECT coalesce(max(id), 0) + 1 FROM users),
                coalesce(pg_sequence_last_value(
                    pg_get_serial_sequence('users', 'id')::regclass) + 1, 1))
            """
        )
        if count:
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('users', 'id'), $1)", first + count - 1
            )
    return int(first)


async def _user_picker(conn: asyncpg.Connection) -> tuple[int, Callable[[int], int]]:
    """How many users there are, and a map from 0..count-1 to their ids."""
    low, high, count = await conn.fetchrow("SELECT min(id), max(id), count(*) FROM users")
    if count == 0:
        return 0, lambda i: 0
    if high - low + 1 == count:
        return count, lambda i: low + i
    # ids have gaps (deleted users): keep them all, 8 bytes each
    ids = array("q")
    async for row in conn.cursor("SELECT id FROM users ORDER BY id", prefetch=50_000):
        ids.append(row[0])
    return len(ids), ids.__getitem__


async def _copy(
    conn: asyncpg.Connection, table: str, columns: Iterable[str], chunks: Iterable[bytes]
) -> None:
    rows = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal rows
        for chunk in chunks:
            rows += chunk.count(b"\n")
            yield chunk

    started = time.perf_counter()
    await conn.copy_to_table(table, source=source(), columns=list(columns), format="text")
    elapsed = time.perf_counter() - started
    rate = rows / elapsed if elapsed > 0 else 0.0
    print(f"{table}: {rows:,} rows in {elapsed:.1f} s ({rate:,.0f} rows/s)", flush=True)
