"""demo-data and simulate-orders: realistic data for trying the panel and benchmarking it."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from array import array
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from typing import IO, Any

import asyncpg

from admin import db
from admin.cli_support import CommandError, database
from admin.demo import simulate
from admin.demo.catalog import CATEGORIES, LEAVES, ProductChunks
from admin.demo.rows import MEAN_ITEMS_PER_ORDER, OrderChunks, PriceList, UserChunks
from admin.migrations import migrate
from admin.settings import Settings


def add_commands(commands: Any) -> None:
    demo = commands.add_parser(
        "demo-data", help="load realistic fake users, products and orders (COPY)"
    )
    demo.add_argument("--users", type=_count, default=10_000, help="users to add")
    demo.add_argument("--orders", type=_count, default=20_000, help="orders (with items) to add")
    demo.add_argument("--products", type=_count, default=2_000, help="products to add")
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
        asyncio.run(
            load_demo_data(
                ready.database_url or "",
                users=args.users,
                orders=args.orders,
                products=args.products,
            )
        )
    return 0


# Below this many rows a load keeps the indexes: rebuilding them would cost more.
REBUILD_MIN_ROWS = 100_000


async def load_demo_data(
    dsn: str,
    *,
    users: int,
    orders: int,
    products: int,
    seed: int | None = None,
    rebuild_min_rows: int = REBUILD_MIN_ROWS,
) -> None:
    """Append `products` products (filed under the demo categories, created when missing),
    `users` users, then `orders` orders with their items; prints rows/s.

    One transaction per table (an order and its items share one) keeps the lock a large load
    takes (see below) to the time of that table's own load.
    """
    # no named statements: DATABASE_URL may be a transaction pooler (PgBouncer)
    conn = await asyncpg.connect(
        dsn, server_settings={"application_name": "pg-admin demo-data"}, statement_cache_size=0
    )
    try:
        await migrate(conn)
        if orders:
            await _check_orders_possible(conn, users=users, products=products)
        started = time.perf_counter()
        rows = 0
        if products:
            rows += await _load_products(conn, products, seed, rebuild_min_rows)
        if users:
            first_id = await _reserve_ids(conn, "users", users)
            async with conn.transaction():
                await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
                async with _indexes_rebuilt_if_large(conn, "users", users, rebuild_min_rows):
                    chunks = UserChunks(first_id, users, seed=seed)
                    rows += await _copy(conn, "users", UserChunks.COLUMNS, chunks)
            await conn.execute("ANALYZE users")
        if orders:
            rows += await _load_orders(conn, orders, seed, rebuild_min_rows)
        elapsed = time.perf_counter() - started
        print(f"done: {rows:,} rows in {elapsed:.1f} s", flush=True)
    except asyncpg.UniqueViolationError as exc:
        raise CommandError(f"{exc.detail or exc}; nothing was loaded, run it again") from None
    finally:
        await conn.close()


async def _check_orders_possible(conn: asyncpg.Connection, *, users: int, products: int) -> None:
    """Refuse before loading anything when the orders would have no one or nothing to buy."""
    if not users and not await conn.fetchval("SELECT EXISTS (SELECT FROM users)"):
        raise CommandError("no users to place orders for: add some with --users N")
    if not products and not await conn.fetchval("SELECT EXISTS (SELECT FROM products)"):
        raise CommandError("no products to put in orders: add some with --products N")


async def _load_products(
    conn: asyncpg.Connection, count: int, seed: int | None, rebuild_min_rows: int
) -> int:
    category_ids = await demo_category_ids(conn)
    first_id = await _reserve_ids(conn, "products", count)
    async with conn.transaction():
        await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        async with _indexes_rebuilt_if_large(conn, "products", count, rebuild_min_rows):
            chunks = ProductChunks(first_id, count, category_ids, seed=seed)
            rows = await _copy(conn, "products", ProductChunks.COLUMNS, chunks)
    await conn.execute("ANALYZE products")
    return rows


async def _load_orders(
    conn: asyncpg.Connection, count: int, seed: int | None, rebuild_min_rows: int
) -> int:
    """Orders and their items in one transaction, so no order is ever seen without its items.

    The items of each chunk of orders are generated with it (an order's total is the sum of
    its items) and spooled to a temporary file until the orders' COPY is done: the items'
    foreign key needs the orders first, and one connection runs one COPY at a time.
    """
    user_count, user_id_at = await _user_picker(conn)
    if user_count == 0:
        raise CommandError("no users to place orders for: add some with --users N")
    products = await _price_list(conn)
    if not products.ids:
        raise CommandError("no products to put in orders: add some with --products N")
    first_id = await _reserve_ids(conn, "orders", count)
    chunks = OrderChunks(first_id, count, user_count, user_id_at, products, seed=seed)
    expected_items = int(count * MEAN_ITEMS_PER_ORDER)
    with tempfile.TemporaryFile(prefix="demo-order-items-") as spool:
        async with conn.transaction():
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            async with _indexes_rebuilt_if_large(conn, "orders", count, rebuild_min_rows):
                rows = await _copy(conn, "orders", OrderChunks.COLUMNS, _spooled(chunks, spool))
            spool.seek(0)
            async with _indexes_rebuilt_if_large(
                conn, "order_items", expected_items, rebuild_min_rows
            ):
                items = iter(partial(spool.read, 1 << 20), b"")
                rows += await _copy(conn, "order_items", OrderChunks.ITEM_COLUMNS, items)
    await conn.execute("ANALYZE orders")
    await conn.execute("ANALYZE order_items")
    return rows


def _spooled(chunks: Iterable[tuple[bytes, bytes]], spool: IO[bytes]) -> Iterator[bytes]:
    """The orders of each chunk; their items go to `spool`."""
    for orders, items in chunks:
        spool.write(items)
        yield orders


# The demo tree is created once, then found again by name (it is unique among siblings,
# case-insensitively); staff may have added categories of their own beside it.
_INSERT_TOP_CATEGORIES = """
INSERT INTO categories (name, created_at, updated_at)
SELECT t.name, now() - interval '3 years', now() - interval '3 years'
FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n)
ORDER BY t.n
ON CONFLICT DO NOTHING
"""
_INSERT_SUBCATEGORIES = """
INSERT INTO categories (name, parent_id, created_at, updated_at)
SELECT s.name, p.id, now() - interval '3 years', now() - interval '3 years'
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s(parent, name, n)
JOIN categories p ON p.parent_id IS NULL AND lower(p.name) = lower(s.parent)
ORDER BY s.n
ON CONFLICT DO NOTHING
"""
_SUBCATEGORY_IDS = """
SELECT c.id
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s(parent, name, n)
JOIN categories p ON p.parent_id IS NULL AND lower(p.name) = lower(s.parent)
JOIN categories c ON c.parent_id = p.id AND lower(c.name) = lower(s.name)
ORDER BY s.n
"""


async def demo_category_ids(conn: asyncpg.Connection) -> list[int]:
    """Create the demo categories that are missing; the ids of LEAVES, in order."""
    parents = [top for top, _ in LEAVES]
    names = [sub.name for _, sub in LEAVES]
    async with conn.transaction():
        before = await conn.fetchval("SELECT count(*) FROM categories")
        await conn.execute(_INSERT_TOP_CATEGORIES, list(CATEGORIES))
        await conn.execute(_INSERT_SUBCATEGORIES, parents, names)
        added = await conn.fetchval("SELECT count(*) FROM categories") - before
        ids = [row["id"] for row in await conn.fetch(_SUBCATEGORY_IDS, parents, names)]
    if len(ids) != len(LEAVES):
        raise CommandError("the demo categories changed during the load; run it again")
    if added:
        print(f"categories: {added:,} added", flush=True)
    return ids


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


async def _reserve_ids(conn: asyncpg.Connection, table: str, count: int) -> int:
    """Move `table`'s id sequence past `count` ids and return the first of them.

    The lock makes the reservation atomic with respect to concurrent inserts, which take
    their ids from the same sequence; it is held only for this short transaction.
    """
    async with conn.transaction():
        await db.wait_for_locks(conn)
        # `table` is one of this module's own constants, never input
        await conn.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        first = await conn.fetchval(
            f"""
            SELECT greatest(
                (SELECT coalesce(max(id), 0) + 1 FROM {table}),
                coalesce(pg_sequence_last_value(
                    pg_get_serial_sequence($1, 'id')::regclass) + 1, 1))
            """,
            table,
        )
        if count:
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence($1, 'id'), $2)", table, first + count - 1
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
    async with conn.transaction():  # a cursor lives in a transaction
        async for row in conn.cursor("SELECT id FROM users ORDER BY id", prefetch=50_000):
            ids.append(row[0])
    return len(ids), ids.__getitem__


async def _price_list(conn: asyncpg.Connection) -> PriceList:
    """Every product, oldest first, 24 bytes each, read as COPY text."""
    ids, cents, created = array("q"), array("q"), array("d")
    rest = b""

    async def take(data: bytes) -> None:
        nonlocal rest
        lines = (rest + bytes(data)).split(b"\n")
        rest = lines.pop()
        for line in lines:
            product_id, price, epoch = line.split(b"\t")
            ids.append(int(product_id))
            cents.append(int(price))
            created.append(float(epoch))  # 'Infinity' and '-Infinity' parse too

    await conn.copy_from_query(
        "SELECT id, (price * 100)::bigint, extract(epoch FROM created_at)::float8"
        " FROM products ORDER BY created_at, id",
        output=take,
    )
    return PriceList(ids, cents, created)


async def _copy(
    conn: asyncpg.Connection, table: str, columns: Iterable[str], chunks: Iterable[bytes]
) -> int:
    """COPY the chunks into the table; prints and returns the row count."""
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
    return rows
