"""What change capture costs writers: capture on vs off, same server, same run.

    flock /tmp/bench.lock python bench/capture_cost.py --rows 1000000 --seconds 20

1. A CSV import of `--rows` users by COPY (the panel's import COPYs into a staging table,
   then writes users in one statement: the capture cost is in that statement; a bare COPY
   into users is the harshest ratio). Runs alternate off, on, off, on; best of each.
2. The panel's own writes over HTTP (bench/panel_writes.py) for `--panel-seconds` each way:
   the app under uvicorn (one worker, logged in), 8 keep-alive clients doing inline edits of
   users, product stock in its edit form, order status quick edits, categories created and
   deleted through the routes; writes/s on vs off in alternating quarters, and CPU per write
   of the app process and of PostgreSQL (every backend and helper of its server).
3. The harshest case, raw SQL from 8 connections for `--seconds` each way: single-row
   updates of users, products and orders, inserts and deletes of categories, and 20-row
   order inserts (transactions/s on vs off, alternating halves).
Prints each figure and the on/off ratio. `--skip-copy` and `--skip-panel` leave parts out.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from csv_common import COLUMNS, database, write_users_csv
from panel_writes import Ids, panel_mix

from admin.live import capture
from admin.resources import catalog
from admin.resources.registry import INTERNAL_TABLES
from tests.conftest import TEST_SECRET_KEY, create_staff, log_in
from tests.live import live_server

# the panel never looks at the catalog again during the run: capture is switched by this
# bench alone (a running panel reinstalls dropped triggers at its next catalog check)
PANEL_ENV = {"CATALOG_CHECK_S": "1000000", "POOL_MIN_SIZE": "8", "POOL_MAX_SIZE": "10"}


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


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def postgres_processes(postmaster: psutil.Process) -> list[psutil.Process]:
    return [postmaster, *postmaster.children()]


async def capture_installed(conn: asyncpg.Connection) -> bool:
    wanted = len(capture.TRIGGERS) * await conn.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> all($1::text[])",
        list(INTERNAL_TABLES),
    )
    found = await conn.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'admin\\_live\\_%' AND NOT tgisinternal"
    )
    return found >= wanted


async def panel_run(url: str, conn: asyncpg.Connection, seconds: float) -> None:
    if not await conn.fetchval("SELECT 1 FROM staff WHERE username = 'bench'"):
        await create_staff(conn, "bench", "admin")
    ids = Ids(
        users=await conn.fetchval("SELECT array_agg(id) FROM users"),
        products=await conn.fetchval("SELECT array_agg(id) FROM products"),
        orders=await conn.fetchval("SELECT array_agg(id) FROM orders"),
    )
    postmaster = psutil.Process(
        psutil.Process(await conn.fetchval("SELECT pg_backend_pid()")).ppid()
    )
    log_dir = Path(tempfile.mkdtemp(prefix="capture-panel-"))
    with live_server(url, TEST_SECRET_KEY, log_dir, extra_env=PANEL_ENV) as server:
        port = int(server.url.rsplit(":", 1)[1])
        async with httpx.AsyncClient(base_url=server.url) as http:
            csrf = await log_in(http, "bench")
            await http.get("/users")
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        for _ in range(100):
            if await capture_installed(conn):
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("the panel did not install capture")
        await panel_mix(port, cookie, csrf, ids, 2.0, seed=99)  # warm every page and plan
        app = [psutil.Process(server.process.pid)]
        writes = {False: 0, True: 0}
        took = {False: 0.0, True: 0.0}
        app_cpu = {False: 0.0, True: 0.0}
        pg_cpu = {False: 0.0, True: 0.0}
        statuses: dict[bool, Counter[str]] = {False: Counter(), True: Counter()}
        for turn, on in enumerate((False, True, False, True)):
            await set_capture(conn, on)
            pg = postgres_processes(postmaster)
            app_before, pg_before = cpu_seconds(app), cpu_seconds(pg)
            tally, elapsed = await panel_mix(port, cookie, csrf, ids, seconds / 4, seed=turn)
            app_cpu[on] += cpu_seconds(app) - app_before
            pg_cpu[on] += cpu_seconds(pg) - pg_before
            writes[on] += tally.writes
            took[on] += elapsed
            statuses[on].update(tally.statuses)
        await set_capture(conn, True)
    rate = {on: writes[on] / took[on] for on in (False, True)}
    cost = 100 * (1 - rate[True] / rate[False])
    print(f"panel writes over HTTP, 8 clients: off {rate[False]:,.0f} writes/s,"
          f" on {rate[True]:,.0f} writes/s, cost {cost:+.1f}%")  # fmt: skip
    for on in (False, True):
        per = max(writes[on], 1)
        print(f"  capture {'on ' if on else 'off'}: {writes[on]:,} writes;"
              f" CPU per write: app {1000 * app_cpu[on] / per:.2f} ms,"
              f" PostgreSQL {1000 * pg_cpu[on] / per:.2f} ms")  # fmt: skip
    off_pg, on_pg = pg_cpu[False] / max(writes[False], 1), pg_cpu[True] / max(writes[True], 1)
    off_all = off_pg + app_cpu[False] / max(writes[False], 1)
    on_all = on_pg + app_cpu[True] / max(writes[True], 1)
    print(f"  CPU per write, app + PostgreSQL: {100 * (on_all / off_all - 1):+.1f}% with capture;"
          f" PostgreSQL alone {100 * (on_pg / off_pg - 1):+.1f}%")  # fmt: skip
    for on in (False, True):
        print(f"  responses, capture {'on' if on else 'off'}: {dict(sorted(statuses[on].items()))}")


async def run(
    url: str, rows: int, seconds: float, panel_seconds: float, copy: bool, panel: bool
) -> None:
    conn = await asyncpg.connect(url)
    work = Path(tempfile.mkdtemp(prefix="capture-"))
    path = work / "users.csv"
    if copy:
        write_users_csv(path, rows)
    try:
        if copy:
            timings: dict[bool, list[float]] = {False: [], True: []}
            for on in (False, True, False, True):
                await set_capture(conn, on)
                timings[on].append(await import_once(conn, path))
            off, on_ = min(timings[False]), min(timings[True])
            print(f"COPY {rows:,} users: off {rows / off:,.0f} rows/s, on {rows / on_:,.0f} rows/s,"
                  f" cost {100 * (on_ / off - 1):+.1f}%")  # fmt: skip
        await seed(conn)
        if panel:
            await conn.execute("VACUUM ANALYZE")
            await panel_run(url, conn, panel_seconds)
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
        path.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--panel-seconds", type=float, default=40.0)
    parser.add_argument("--skip-copy", action="store_true")
    parser.add_argument("--skip-panel", action="store_true")
    args = parser.parse_args()
    with database() as url:
        asyncio.run(
            run(url, args.rows, args.seconds, args.panel_seconds, not args.skip_copy,
                not args.skip_panel)
        )  # fmt: skip


if __name__ == "__main__":
    main()
