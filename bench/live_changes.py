"""/live/changes at scale: 1,000 clients spread over different tables, changes mixed across
tables at a steady rate; commit-to-client latency, whether every client got exactly its
changes, and RSS per idle client.

    flock /tmp/bench.lock python bench/live_changes.py [--clients 1000] [--rate 500] [--seconds 10]

One uvicorn worker; the clients run in separate uvloop processes (this file, `--client-process`
mode) reading by protocol callbacks. Each client asks for one of several table filters
(every table, one table, two or three). Probe clients (up to 20, spread over the filters)
stamp each change when its frame is complete; the others count frames. One writer
connection sends single-row autocommitted statements round-robin over five tables
(insert a category, update a user, update a product, insert an order, insert an order
line), so the changes' ids follow the writes one for one and each change's send time is
known. The same-run reference is the order feed's /events at the same client count.
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

CHANGE = re.compile(rb"id: (\d+)\nevent: change\n")
MARKER = b"event: change\n"
SPAN = len(MARKER) - 1
TARGET_P99_MS = 100.0
TODAY_IDLE_KB = 23.6
PASSWORD = "bench-password-123"
FILTERS = [
    "",
    "users",
    "orders",
    "products,categories",
    "orders,order_items",
    "users,orders,products",
    "categories",
    "order_items",
]
BENCH_ENV = {
    "POOL_MAX_SIZE": "10",
    "SSE_MAX_PER_SESSION": "100000",
    "SSE_MAX_PER_PROCESS": "100000",
}


# ---- client process ------------------------------------------------------------------


class _Stream(asyncio.Protocol):
    """One stream: counts change frames on the raw bytes (uvicorn writes each release as
    one chunk, so a chunk header never splits a frame); a probe also stamps each id."""

    def __init__(self, request: bytes, stamps: dict[int, float] | None) -> None:
        self._request = request
        self._stamps = stamps
        self._carry = b""
        self._tail = b""
        self.events = 0
        self.ordered = True
        self.last = 0
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.WriteTransport, transport).write(self._request)

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            if not data.startswith(b"HTTP/1.1 200"):
                self.opened.set_exception(ConnectionError(data[:600].decode(errors="replace")))
                return
            self.opened.set_result(None)
        if self._stamps is None:
            self.events += (self._carry + data[:SPAN]).count(MARKER) + data.count(MARKER)
            self._carry = data[-SPAN:] if len(data) >= SPAN else (self._carry + data)[-SPAN:]
            return
        now = time.time()
        buf = self._tail + data
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            self._tail = buf
            return
        self._tail = buf[cut + 2 :]
        for match in CHANGE.finditer(buf, 0, cut + 2):
            change_id = int(match.group(1))
            self.events += 1
            if change_id <= self.last:
                self.ordered = False
            self.last = change_id
            self._stamps.setdefault(change_id, now)


async def _clients(config: dict[str, object]) -> None:
    loop = asyncio.get_running_loop()
    port, cookie = cast(int, config["port"]), cast(str, config["cookie"])
    plan = cast(list[list[object]], config["plan"])  # [filter, is_probe] per stream
    streams: list[_Stream] = []
    stamps: list[dict[int, float]] = []
    transports = []
    for start in range(0, len(plan), 100):
        batch = []
        for tables, probe in plan[start : start + 100]:
            query = f"?tables={tables}" if tables else ""
            request = (
                f"GET /live/changes{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n"
            ).encode()
            own: dict[int, float] | None = {} if probe else None
            if own is not None:
                stamps.append(own)
            stream = _Stream(request, own)
            transport, _ = await loop.create_connection(lambda s=stream: s, "127.0.0.1", port)
            transports.append(transport)
            batch.append(stream)
        async with asyncio.timeout(60):
            await asyncio.gather(*(stream.opened for stream in batch))
        streams += batch
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    for transport in transports:
        transport.close()
    out = {
        "counts": [s.events for s in streams],
        "ordered": all(s.ordered for s in streams),
        "stamps": stamps,
    }
    print(json.dumps(out), flush=True)


# ---- driver --------------------------------------------------------------------------


WRITES = [
    ("categories", "INSERT INTO categories (name) VALUES ('c' || $1::text)"),
    ("users", "UPDATE users SET full_name = $1::text WHERE id = (SELECT min(id) FROM users)"),
    ("products", "UPDATE products SET name = 'p' || $1::text WHERE sku = 'B-1'"),
    ("orders", "INSERT INTO orders (user_id, total) SELECT min(id), 1 FROM users WHERE $1 <> ''"),
    (
        "order_items",
        "INSERT INTO order_items (order_id, product_id, quantity, unit_price)"
        " SELECT (SELECT min(id) FROM orders), (SELECT min(id) FROM products), 1, 1"
        " WHERE $1 <> ''",
    ),
]


async def _seed(dsn: str) -> None:
    import asyncpg

    from admin.staff import table as staff

    conn = await asyncpg.connect(dsn)
    await staff.create(conn, "bench", PASSWORD, "staff")
    await conn.execute("INSERT INTO users (username, email) VALUES ('buyer', 'b@example.com')")
    category = await conn.fetchval("INSERT INTO categories (name) VALUES ('seed') RETURNING id")
    await conn.execute(
        "INSERT INTO products (sku, name, price, category_id) VALUES ('B-1', 'b', 1, $1)", category
    )
    await conn.execute("INSERT INTO orders (user_id, total) SELECT min(id), 1 FROM users")
    await conn.close()


async def _write_steady(dsn: str, rate: float, seconds: float) -> list[tuple[str, float]]:
    """Single-row autocommitted writes at `rate`/s; (table, send time) in order."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    sent: list[tuple[str, float]] = []
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        table, sql = WRITES[n % len(WRITES)]
        at = time.time()
        await conn.execute(sql, str(n))
        sent.append((table, at))
        n += 1
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    await conn.close()
    return sent


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


async def _run_clients(
    port: int, cookie: str, plan: list[list[object]], procs: int
) -> list[asyncio.subprocess.Process]:
    running = []
    share = -(-len(plan) // procs)
    for first in range(0, len(plan), share):
        config = {"port": port, "cookie": cookie, "plan": plan[first : first + share]}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client-process", json.dumps(config),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**28,
        )  # fmt: skip
        running.append(proc)
    for proc in running:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"client process failed: {line[:200]!r}")
    return running


async def _finish(running: list[asyncio.subprocess.Process]) -> dict[str, object]:
    merged: dict[str, object] = {"counts": [], "ordered": True, "stamps": []}
    for proc in running:
        assert proc.stdin is not None
        proc.stdin.write(b"stop\n")
        await proc.stdin.drain()
    for proc in running:
        assert proc.stdout is not None
        out = json.loads(await proc.stdout.readline())
        await proc.wait()
        cast(list[int], merged["counts"]).extend(out["counts"])
        merged["ordered"] = bool(merged["ordered"]) and out["ordered"]
        cast(list[dict[str, float]], merged["stamps"]).extend(out["stamps"])
    return merged


async def _idle_rss(port: int, cookie: str, pid: int, clients: int, path: str) -> float:
    import psutil

    process = psutil.Process(pid)
    plan: list[list[object]] = [[FILTERS[i % len(FILTERS)], False] for i in range(clients)]
    if path == "/events":
        plan = [["", False]] * clients
    # warmed first: the first stream of each filter reads the catalog, builds its scope
    if path == "/events":
        from bench.sse_fanout import _open

        _, writer = await _open(port, cookie)
        writer.close()
    else:
        await _finish(await _run_clients(port, cookie, [[f, False] for f in FILTERS], 1))
    await asyncio.sleep(1)
    before = process.memory_info().rss
    running = await _run_clients(port, cookie, plan, 1) if path != "/events" else None
    if running is None:
        from bench.sse_fanout import _open

        streams = []
        for _ in range(0, clients, 100):
            streams += await asyncio.gather(*(_open(port, cookie) for _ in range(100)))
    await asyncio.sleep(2)
    after = process.memory_info().rss
    if running is not None:
        await _finish(running)
    else:
        for _, writer in streams:
            writer.close()
    await asyncio.sleep(1)
    return (after - before) / clients / 1024


SECRET = "bench-secret-key-long-enough"


async def _log_in(url: str) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=url) as http:
        login = await http.get("/login")
        token = re.search(r'name="csrf-token" content="([^"]*)"', login.text)
        assert token is not None
        await http.post(
            "/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token.group(1)}
        )
        return "; ".join(f"{k}={v}" for k, v in http.cookies.items())


async def _capture_ready(dsn: str) -> None:
    """The server installs change capture in the background as it starts."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        while not await conn.fetchval(
            "SELECT count(*) = 5 FROM pg_trigger WHERE tgname = 'admin_live_update'"
            " AND tgrelid = any('{users,orders,products,categories,order_items}'::regclass[])"
        ):
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> None:
    import asyncpg

    from admin import embedded
    from tests import pg
    from tests.live import live_server

    base = Path(tempfile.mkdtemp(prefix="bench-live-changes-", dir="/tmp"))
    server = embedded.start(base)
    try:
        url = server.get_uri()
        dsn = pg.with_database(url, await pg.create_template(url))
        await _seed(dsn)
        idle: dict[str, float] = {}
        # each idle figure on a fresh worker: a second phase reuses what the first freed
        for path in ("/live/changes", "/events"):
            with live_server(dsn, SECRET, base, extra_env=BENCH_ENV) as app:
                port = int(app.url.rsplit(":", 1)[1])
                cookie = await _log_in(app.url)
                idle[path] = await _idle_rss(port, cookie, app.process.pid, args.clients, path)
        with live_server(dsn, SECRET, base, extra_env=BENCH_ENV) as app:
            port = int(app.url.rsplit(":", 1)[1])
            cookie = await _log_in(app.url)
            await _capture_ready(dsn)
            probes = min(args.clients, 20)
            step = max(1, args.clients // probes)
            plan: list[list[object]] = [
                [FILTERS[i % len(FILTERS)], i % step == 0 and i // step < probes]
                for i in range(args.clients)
            ]
            print(f"{args.clients} clients, {args.rate:.0f} changes/s ...", flush=True)
            running = await _run_clients(port, cookie, plan, args.procs)
            conn = await asyncpg.connect(dsn)
            first = await conn.fetchval("SELECT coalesce(max(id), 0) FROM resource_changes")
            await asyncio.sleep(1.0)
            sent = await _write_steady(dsn, args.rate, args.seconds)
            await asyncio.sleep(3.0)
            rows = await conn.fetch(
                "SELECT id, table_name FROM resource_changes WHERE id > $1 ORDER BY id", first
            )
            await conn.close()
            out = await _finish(running)
    finally:
        embedded.stop(server)
        shutil.rmtree(base, ignore_errors=True)

    assert [r["table_name"] for r in rows] == [t for t, _ in sent], "changes do not match writes"
    at = {r["id"]: t for r, (_, t) in zip(rows, sent, strict=True)}
    table_of = {r["id"]: r["table_name"] for r in rows}
    expected = {
        f: sum(1 for r in rows if not f or r["table_name"] in f.split(",")) for f in FILTERS
    }
    counts = cast(list[int], out["counts"])
    wrong = sum(1 for (tables, _), n in zip(plan, counts, strict=True) if n != expected[tables])
    latencies = []
    missed = 0
    probe_plans = [tables for tables, probe in plan if probe]
    for tables, stamps in zip(
        probe_plans, cast(list[dict[str, float]], out["stamps"]), strict=True
    ):
        for change_id, t in at.items():
            if tables and table_of[change_id] not in tables.split(","):
                continue
            got = stamps.get(str(change_id))
            if got is None:
                missed += 1
            else:
                latencies.append((got - t) * 1000)
    p50, p99 = statistics.median(latencies), _p(latencies, 0.99)
    print()
    print(
        f"changes written: {len(rows)} over {args.seconds:.0f} s ({len(rows) / args.seconds:.0f}/s)"
    )
    print(f"clients: {args.clients} over {len(FILTERS)} filters, {len(probe_plans)} probes")
    print(f"commit -> client: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies):.1f} ms")
    print(f"p99 / target ({TARGET_P99_MS:.0f} ms): {p99 / TARGET_P99_MS:.2f}")
    print(f"clients with a wrong count: {wrong}; probe receipts missing: {missed}")
    print(f"every probe in id order: {out['ordered']}")
    print(
        f"RSS per idle client, each on a fresh worker: /live/changes {idle['/live/changes']:.1f}"
        f" KB, /events {idle['/events']:.1f} KB (same run: ratio"
        f" {idle['/live/changes'] / idle['/events']:.2f}); today's /events figure"
        f" {TODAY_IDLE_KB} KB: ratio {idle['/live/changes'] / TODAY_IDLE_KB:.2f}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client-process":
        import uvloop

        uvloop.run(_clients(json.loads(sys.argv[2])))
        sys.exit(0)
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
