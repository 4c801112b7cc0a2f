"""Compressed event streams: what a compressed release costs to make and to receive, then
the same-run A/B of plain and gzip streams from one instance.

Part one (no server): a release of a dozen feed items compressed as one shared segment
(sse_gzip.segment) at deflate levels 1, 6 and 9: size ratio and microseconds per release,
and what each client pays per release besides (the running CRC-32 for the trailer) and
what a reader pays to inflate it.

Part two: one uvicorn worker, orders written at --rate, --counts clients read by
bench/sse_clients.py processes (they inflate per stream), each count run plain then gzip:
commit-to-receipt p50/p99 at the probes, bytes on the wire per event per stream, and the
CPU seconds per second of the server and of the clients.

Run: flock /tmp/bench.lock python bench/sse_gzip.py [--counts 1000,2000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sse_clients import Clients, Target  # noqa: E402
from bench.sse_fanout import BENCH_ENV, PASSWORD, _percentiles  # noqa: E402

RELEASE_ITEMS = 12
WRITERS = 4


def _release() -> bytes:
    from admin.live import view as live_view
    from admin.live.events import OrderEvent

    now = datetime.now(UTC)
    events = [
        OrderEvent(
            10_000 + i,
            5_000 + i,
            "created" if i % 3 else "status_changed",
            {"status": "pending" if i % 3 else "shipped", "old_status": "paid", "total": "84.20"},
            now,
        )
        for i in range(RELEASE_ITEMS)
    ]
    return live_view.order_frames(events, None)


def _per_call_us(fn, rounds: int = 2000) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            fn()
        best = min(best, (time.perf_counter() - started) / rounds * 1e6)
    return best


def micro() -> None:
    from admin.live import sse_gzip

    plain = _release()
    print(f"a release of {RELEASE_ITEMS} feed items: {len(plain)} bytes")
    for level in (1, 6, 9):

        def compress(level: int = level) -> bytes:
            c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
            return c.compress(plain) + c.flush(zlib.Z_SYNC_FLUSH)

        size = len(compress())
        print(
            f"  level {level}: {size} bytes (ratio {len(plain) / size:.2f}),"
            f" {_per_call_us(compress):.1f} us per release (once per filter, not per client)"
        )
    segment = sse_gzip.segment(plain)
    crc = _per_call_us(lambda: zlib.crc32(plain, 12345))
    print(f"  per client per release: running CRC-32 {crc:.2f} us")

    def inflate() -> bytes:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return d.decompress(sse_gzip.HEADER + segment)

    print(f"  a reader inflating it: {_per_call_us(inflate):.1f} us")


def _cpu(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


async def _run(
    dsn: str, port: int, cookie: str, server_pid: int, clients: int, gzip: bool, args
) -> str:  # type: ignore[no-untyped-def]
    import psutil

    from bench.topology_sse import write

    streams = Clients(
        [Target("127.0.0.1", port, False)], cookie, clients,
        procs=args.client_procs, probes=args.probes, gzip=gzip,
    )  # fmt: skip
    client_pids = await streams.start()
    try:
        await asyncio.sleep(2.0)
        machine = psutil.cpu_times()
        before = (_cpu([server_pid]), _cpu(client_pids), machine.user + machine.system)
        started = time.monotonic()
        committed = await write(dsn, args.rate, args.seconds)
        machine = psutil.cpu_times()
        after = (_cpu([server_pid]), _cpu(client_pids), machine.user + machine.system)
        elapsed = time.monotonic() - started
        await asyncio.sleep(1.5)
    finally:
        outcome = await streams.finish()
    latencies, missing = [], 0
    for order_id, at in committed.items():
        got = outcome.receipts.get(order_id, [])
        missing += outcome.probes - len(got)
        latencies += [(t - at) * 1000 for t in got]
    p50, p99 = _percentiles(latencies)
    wrong = sum(1 for n in outcome.counts if n != len(committed))
    events = max(len(committed), 1)
    wire = outcome.bytes_received / clients / events
    decoded = outcome.bytes_decoded / clients / events
    used = [(a - b) / elapsed for a, b in zip(after, before, strict=True)]
    server, client_cpu, machine_cpu = used
    coding = "gzip " if gzip else "plain"
    return (
        f"{clients:5d} {coding} | {len(committed) / elapsed:4.0f}/s | p50 {p50:7.1f} ms |"
        f" p99 {p99:7.1f} ms | missing {missing} wrong {wrong} closed {outcome.closed_early} |"
        f" {wire:5.0f} B/event/stream ({decoded:.0f} decoded, {outcome.compressed} gzip,"
        f" inflated after the run in {outcome.inflate_seconds / elapsed:.2f} CPU s/s) |"
        f" {outcome.bytes_received / elapsed / 1e6:6.1f} MB/s | CPU s/s server {server:.2f}"
        f" clients {client_cpu:.2f} machine {machine_cpu:.2f}"
    )


async def ab(args: argparse.Namespace) -> None:
    import asyncpg
    import httpx

    from admin import embedded
    from admin.staff import table as staff
    from tests import pg
    from tests.live import live_server

    base = Path(tempfile.mkdtemp(prefix="bench-sse-gzip-", dir="/tmp"))
    server = embedded.start(base)
    try:
        url = server.get_uri()
        dsn = pg.with_database(url, await pg.create_template(url))
        conn = await asyncpg.connect(dsn)
        await staff.create(conn, "bench", PASSWORD, "staff")
        await conn.execute("INSERT INTO users (username, email) VALUES ('buyer', 'b@example.com')")
        await conn.close()
        with live_server(dsn, "bench-secret-key-long-enough", base, extra_env=BENCH_ENV) as app:
            port = int(app.url.rsplit(":", 1)[1])
            async with httpx.AsyncClient(base_url=app.url) as http:
                login = await http.get("/login")
                found = re.search(r'name="csrf-token" content="([^"]*)"', login.text)
                assert found is not None
                await http.post(
                    "/login",
                    data={"username": "bench", "password": PASSWORD, "csrf_token": found[1]},
                )
                cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
            print(f"load average before: {os.getloadavg()}", flush=True)
            for clients in args.counts:
                for gzip in (False, True):
                    line = await _run(dsn, port, cookie, app.process.pid, clients, gzip, args)
                    print(line, flush=True)
                    await asyncio.sleep(3.0)  # the server drops the closed streams
            print(f"load average after: {os.getloadavg()}", flush=True)
    finally:
        embedded.stop(server)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument(
        "--counts", type=lambda v: [int(n) for n in v.split(",")], default=[1000, 2000]
    )
    parser.add_argument("--client-procs", type=int, default=3)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--micro-only", action="store_true", help="part one only")
    args = parser.parse_args()
    micro()
    if not args.micro_only:
        asyncio.run(ab(args))
