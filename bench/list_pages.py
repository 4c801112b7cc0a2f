"""Latency of the users/orders list pages on 1M + 1M rows, and throughput against a bare page.

    flock /tmp/bench.lock python bench/list_pages.py [--users 1000000] [--orders 1000000]

Loads the rows with `python -m admin demo-data` into a fresh database, runs the app under
uvicorn (1 worker), measures p50/p95 of five list requests (sequential, keep-alive), then
requests/s of the users first page with 32 concurrent clients, and the same for a bare
Starlette + Jinja page of the same byte size (bench/bare_page.py), started the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from admin.listing import encode_cursor  # noqa: E402
from admin.users import SORT_COLUMNS  # noqa: E402
from bench.csv_common import database  # noqa: E402
from tests.conftest import TEST_SECRET_KEY, create_staff, log_in  # noqa: E402
from tests.live import free_port, live_server  # noqa: E402


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive GET client: keeps the load generator's CPU small."""

    def __init__(self, port: int, cookie: str) -> None:
        self.port = port
        self.cookie = cookie
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, headers: str = "") -> tuple[int, int]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Cookie: {self.cookie}\r\nAccept: text/html\r\n{headers}\r\n"
        )
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if b"transfer-encoding: chunked" in head.lower():
            raise RuntimeError("chunked responses are not expected here")
        body = await self.reader.readexactly(length)
        return status, len(body)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def load_rows(url: str, users: int, orders: int) -> float:
    started = time.perf_counter()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": TEST_SECRET_KEY}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "admin",
            "demo-data",
            "--users",
            str(users),
            "--orders",
            str(orders),
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return time.perf_counter() - started


async def prepare(url: str) -> tuple[str, dict[str, object]]:
    """VACUUM ANALYZE, a staff login, and the deep-page cursor (the row past 900,000)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM ANALYZE users")
        await conn.execute("VACUUM ANALYZE orders")
        await create_staff(conn, "bench", "staff")
        total = await conn.fetchval("SELECT count(*) FROM users")
        offset = min(900_000, int(total * 0.9))
        deep_id = await conn.fetchval("SELECT id FROM users ORDER BY id OFFSET $1 LIMIT 1", offset)
        rows = await conn.fetch(
            "SELECT id, username, email, full_name, is_active, created_at FROM users"
            " ORDER BY id LIMIT 50"
        )
    finally:
        await conn.close()
    cursor = encode_cursor(SORT_COLUMNS["id"], deep_id, deep_id)
    sample = {
        "rows": [
            {**dict(r), "created_at": r["created_at"].strftime("%Y-%m-%d %H:%M")} for r in rows
        ],
        "offset": offset,
    }
    return cursor, sample


async def latencies(port: int, cookie: str, path: str, runs: int) -> tuple[float, float, int]:
    client = KeepAliveClient(port, cookie)
    try:
        for _ in range(10):
            status, size = await client.get(path)
            assert status == 200, (path, status)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            status, size = await client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert status == 200
    finally:
        await client.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], size


async def throughput(port: int, cookie: str, path: str, clients: int, seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        client = KeepAliveClient(port, cookie)
        try:
            while time.perf_counter() < stop:
                status, _ = await client.get(path)
                assert status == 200, status
                done += 1
        finally:
            await client.close()

    # warm every connection first
    await asyncio.gather(*(KeepAliveClient(port, cookie).get(path) for _ in range(clients)))
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return done / (time.perf_counter() - started)


def login_cookie(base_url: str) -> str:
    async def go() -> str:
        async with httpx.AsyncClient(base_url=base_url) as http:
            await log_in(http, "bench")
            return "; ".join(f"{k}={v}" for k, v in http.cookies.items())

    return asyncio.run(go())


def bare_server(sample_path: Path, log_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "BARE_PAGE_DATA": str(sample_path)}
    log = open(log_dir / "bare.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bare_page:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    for _ in range(100):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return process, port
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("bare server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()

    log_dir = Path(tempfile.mkdtemp(prefix="list-bench-"))
    with database() as url:
        took = load_rows(url, args.users, args.orders)
        print(f"loaded {args.users:,} users + {args.orders:,} orders in {took:.0f} s")
        cursor, sample = asyncio.run(prepare(url))
        env = {"POOL_MIN_SIZE": "4", "POOL_MAX_SIZE": "10"}
        with live_server(url, TEST_SECRET_KEY, log_dir, extra_env=env) as server:
            port = int(server.url.rsplit(":", 1)[1])
            cookie = login_cookie(server.url)
            requests = [
                ("users first page", "/users"),
                ("users search q=smith", "/users?q=smith"),
                (f"users keyset page past row {sample['offset']:,}", f"/users?after={cursor}"),
                ("users sorted by email", "/users?sort=email"),
                ("orders status=paid", "/orders?status=paid"),
            ]
            print(f"\n{'request':<42} {'p50 ms':>8} {'p95 ms':>8} {'bytes':>8}")
            worst = 0.0
            for label, path in requests:
                p50, p95, size = asyncio.run(latencies(port, cookie, path, args.runs))
                worst = max(worst, p95)
                print(f"{label:<42} {p50:8.1f} {p95:8.1f} {size:8,}")
            page_size = asyncio.run(latencies(port, cookie, "/users", 1))[2]
            app_rps = asyncio.run(throughput(port, cookie, "/users", args.clients, args.seconds))
        sample_path = log_dir / "bare.json"
        sample_path.write_text(json.dumps({"rows": sample["rows"], "size": page_size}))
        process, bare_port = bare_server(sample_path, log_dir)
        try:
            bare_size = asyncio.run(latencies(bare_port, "x=1", "/", 1))[2]
            bare_rps = asyncio.run(throughput(bare_port, "x=1", "/", args.clients, args.seconds))
        finally:
            process.terminate()
            process.wait(10)
    print(f"\nusers first page, {args.clients} concurrent clients, {args.seconds:.0f} s each")
    print(f"  app  /users        {app_rps:8.0f} req/s  ({page_size:,} bytes)")
    print(f"  bare Starlette+Jinja {bare_rps:6.0f} req/s  ({bare_size:,} bytes)")
    print(f"  ratio app/bare: {app_rps / bare_rps:.2f}  (target >= 0.5)")
    print(f"  worst p95: {worst:.1f} ms (target < 50)")


if __name__ == "__main__":
    main()
