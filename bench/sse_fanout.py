"""SSE fan-out: commit-to-receipt latency at 1, 100 and 1,000 clients with orders written at
a steady rate, the highest event rate one worker sustains to 100 clients, RSS per idle
client, and (the same-run reference) raw LISTEN/NOTIFY latency to a bare asyncpg listener.

One uvicorn worker; the clients run in a separate process (this file, `--clients` mode).
Run: flock /tmp/bench.lock python bench/sse_fanout.py [--seconds 5] [--rate 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ORDER = re.compile(rb"Order #(\d+)<")
TARGET_P99_MS = 100.0
TARGET_IDLE_KB = 50.0
PASSWORD = "bench-password-123"
# every client shares one login, so the per-session cap on streams is lifted here
BENCH_ENV = {
    "POOL_MAX_SIZE": "10",
    "SSE_MAX_PER_SESSION": "100000",
    "SSE_MAX_PER_PROCESS": "100000",
}


# ---- client process ------------------------------------------------------------------


async def _open(port: int, cookie: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


class _Stream(asyncio.Protocol):
    """One SSE connection read by callbacks, not a task per stream, so 1,000 streams cost
    the client process little; a probe stamps each order when its event is complete."""

    def __init__(self, request: bytes, receipts: dict[int, list[float]] | None) -> None:
        self._request = request
        self._receipts = receipts
        self._tail = b""
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses
        cast(asyncio.WriteTransport, transport).write(self._request)

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self.opened.set_result(None)
        if self._receipts is None:
            return
        now = time.time()
        *complete, self._tail = (self._tail + data).split(b"\r\n\r\n")
        for event in complete:
            for match in ORDER.finditer(event):
                self._receipts.setdefault(int(match.group(1)), []).append(now)


async def _clients(port: int, cookie: str, count: int, probes: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    request = f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode()
    receipts: dict[int, list[float]] = {}
    transports = []
    for start in range(0, count, 100):
        batch = [
            _Stream(request, receipts if i < probes else None)
            for i in range(start, min(start + 100, count))
        ]
        for stream in batch:
            transport, _ = await loop.create_connection(lambda s=stream: s, "127.0.0.1", port)
            transports.append(transport)
        async with asyncio.timeout(30):
            await asyncio.gather(*(stream.opened for stream in batch))
    print("ready", flush=True)
    await asyncio.sleep(seconds)
    for transport in transports:
        transport.close()
    print(json.dumps({"receipts": receipts}), flush=True)


# ---- driver --------------------------------------------------------------------------


async def _write_steady(dsn: str, rate: float, seconds: float) -> dict[int, float]:
    """One order per transaction at `rate`/s; returns order id -> commit time."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    customer = await conn.fetchval("SELECT min(id) FROM users")
    committed: dict[int, float] = {}
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        # the clock starts as the autocommitted insert is sent, for SSE and raw alike
        sent = time.time()
        order_id = await conn.fetchval(
            "INSERT INTO orders (user_id, total) VALUES ($1, 1) RETURNING id", customer
        )
        committed[order_id] = sent
        n += 1
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    await conn.close()
    return committed


def _percentiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    if not values:
        return float("nan"), float("nan")
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return statistics.median(values), p99


async def _fanout(
    dsn: str, port: int, cookie: str, clients: int, rate: float, seconds: float
) -> tuple[float, float, float]:
    probes = min(clients, 10)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--clients", str(port), cookie, str(clients), str(probes),
        str(seconds + 3),
        stdout=asyncio.subprocess.PIPE, limit=2**28,
    )  # fmt: skip
    assert proc.stdout is not None
    assert (await proc.stdout.readline()).strip() == b"ready"
    await asyncio.sleep(1.0)
    committed = await _write_steady(dsn, rate, seconds)
    out = json.loads(await proc.stdout.readline())
    await proc.wait()
    latencies = []
    missing = 0
    for order_id, at in committed.items():
        got = out["receipts"].get(str(order_id), [])
        missing += probes - len(got)
        latencies += [(t - at) * 1000 for t in got]
    p50, p99 = _percentiles(latencies)
    return p50, p99, missing


async def _raw_listen_latency(dsn: str, rate: float, seconds: float) -> tuple[float, float]:
    """The floor: commit to NOTIFY arrival at a bare asyncpg listener (no SSE, no HTTP)."""
    import asyncpg

    listener = await asyncpg.connect(dsn)
    arrivals: dict[int, float] = {}
    await listener.add_listener(
        "order_events", lambda *a: arrivals.setdefault(int(a[3]), time.time())
    )
    conn = await asyncpg.connect(dsn)
    committed = await _write_steady(dsn, rate, seconds)
    await asyncio.sleep(0.5)
    ids = await conn.fetch(
        "SELECT order_id, id FROM order_events WHERE kind = 'created' AND order_id = any($1)",
        list(committed),
    )
    latencies = [
        (arrivals[r["id"]] - committed[r["order_id"]]) * 1000 for r in ids if r["id"] in arrivals
    ]
    await listener.close()
    await conn.close()
    return _percentiles(latencies)


async def _max_rate(dsn: str, port: int, cookie: str, clients: int, seconds: float) -> float:
    """Write as fast as one connection can (batches of 20 rows) and measure the rate at
    which the probes receive events while the writer runs."""
    import asyncpg

    probes = 5
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--clients", str(port), cookie, str(clients), str(probes),
        str(seconds + 6),
        stdout=asyncio.subprocess.PIPE, limit=2**28,
    )  # fmt: skip
    assert proc.stdout is not None
    await proc.stdout.readline()
    await asyncio.sleep(1.0)
    conn = await asyncpg.connect(dsn)
    customer = await conn.fetchval("SELECT min(id) FROM users")
    first = await conn.fetchval("SELECT coalesce(max(id), 0) FROM orders")
    start = time.time()
    while time.time() - start < seconds:
        await conn.execute(
            "INSERT INTO orders (user_id, total) SELECT $1, 1 FROM generate_series(1, 20)",
            customer,
        )
    end = time.time()
    last = await conn.fetchval("SELECT max(id) FROM orders")
    await conn.close()
    out = json.loads(await proc.stdout.readline())
    await proc.wait()
    done_at = []
    for order_id in range(first + 1, last + 1):
        got = out["receipts"].get(str(order_id), [])
        if len(got) == probes:
            done_at.append(max(got))
    written_rate = (last - first) / (end - start)
    if not done_at:
        return 0.0
    delivered_rate = len(done_at) / (max(done_at) - start)
    return min(written_rate, delivered_rate)


async def _idle_rss(port: int, cookie: str, pid: int, clients: int) -> float:
    import psutil

    process = psutil.Process(pid)
    before = process.memory_info().rss
    streams = []
    for _ in range(0, clients, 100):
        streams += await asyncio.gather(*(_open(port, cookie) for _ in range(100)))
    await asyncio.sleep(2)
    after = process.memory_info().rss
    for _, writer in streams:
        writer.close()
    return (after - before) / clients / 1024


async def main(args: argparse.Namespace) -> None:
    import asyncpg
    import httpx

    from admin import embedded
    from admin.staff import table as staff
    from tests import pg
    from tests.live import live_server

    base = Path(tempfile.mkdtemp(prefix="bench-sse-", dir="/tmp"))
    server = embedded.start(base)
    try:
        url = server.get_uri()
        dsn = pg.with_database(url, await pg.create_template(url))
        conn = await asyncpg.connect(dsn)
        await staff.create(conn, "bench", PASSWORD, "staff")
        await conn.execute("INSERT INTO users (username, email) VALUES ('buyer', 'b@example.com')")
        await conn.close()
        print("raw LISTEN/NOTIFY (reference) ...", flush=True)
        raw_p50, raw_p99 = await _raw_listen_latency(dsn, args.rate, args.seconds)
        secret = "bench-secret-key-long-enough"
        with live_server(dsn, secret, base, extra_env=BENCH_ENV) as app:
            port = int(app.url.rsplit(":", 1)[1])
            async with httpx.AsyncClient(base_url=app.url) as http:
                login = await http.get("/login")
                token = re.search(r'name="csrf-token" content="([^"]*)"', login.text).group(1)
                await http.post(
                    "/login",
                    data={
                        "username": "bench",
                        "password": "bench-password-123",
                        "csrf_token": token,
                    },
                )
                cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
            # first, on a fresh process, before bigger phases leave freed memory behind
            idle_kb = await _idle_rss(port, cookie, app.process.pid, 1000)
            rows = []
            for clients in args.counts:
                print(f"{clients} clients at {args.rate:.0f}/s ...", flush=True)
                p50, p99, missing = await _fanout(
                    dsn, port, cookie, clients, args.rate, args.seconds
                )
                rows.append((clients, p50, p99, missing))
            print("max rate to 100 clients ...", flush=True)
            top = await _max_rate(dsn, port, cookie, 100, args.seconds)
    finally:
        embedded.stop(server)
        shutil.rmtree(base, ignore_errors=True)

    print()
    print(f"raw LISTEN/NOTIFY at {args.rate:.0f}/s: p50 {raw_p50:.1f} ms, p99 {raw_p99:.1f} ms")
    print("clients | p50 ms | p99 ms | p99 / raw p99 | p99 / target | missed receipts")
    for clients, p50, p99, missing in rows:
        print(
            f"{clients:7d} | {p50:6.1f} | {p99:6.1f} | {p99 / raw_p99:13.1f} |"
            f" {p99 / TARGET_P99_MS:12.2f} | {missing}"
        )
    print(f"highest sustained event rate to 100 clients: {top:.0f} events/s")
    print(
        f"RSS per idle client: {idle_kb:.1f} KB (target {TARGET_IDLE_KB:.0f} KB:"
        f" ratio {idle_kb / TARGET_IDLE_KB:.2f})"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--clients":
        import uvloop

        port, cookie, count, probes, seconds = sys.argv[2:7]
        uvloop.run(_clients(int(port), cookie, int(count), int(probes), float(seconds)))
        sys.exit(0)
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument(
        "--counts", type=lambda v: [int(n) for n in v.split(",")], default=[1, 100, 1000]
    )
    asyncio.run(main(parser.parse_args()))
