"""SSE latency in the production topology, and where the CPU goes while it is measured.

Streams are opened by `bench/sse_clients.py` (several uvloop processes), then orders are
written to the primary at a steady rate, one per autocommitted insert. Latency runs from
the moment the insert is sent to a probe stream's receipt of the complete event. Every
stream must receive every committed order exactly once.

Meanwhile the CPU time of each part of the topology is sampled (psutil), so the figures
say which share of the cores the clients, nginx, the instances and PostgreSQL took.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.sse_clients import Clients, Target
from bench.sse_fanout import _percentiles, _write_steady

WRITERS = 4

# the plain-HTTP nginx's port (and the next one); another topology on the same machine
# sets TOPO_PLAIN_PORT like its other TOPO_*_PORT
PLAIN_PORT = int(os.environ.get("TOPO_PLAIN_PORT", "28444"))


@dataclass(frozen=True)
class SseRun:
    via: str
    clients: int
    procs: int
    p50: float
    p99: float
    missing: int
    # streams that got some order other than exactly once, or were closed by the server
    wrong_streams: int
    closed_early: int
    # bytes a stream received per order written (the feed item plus its share of the rest)
    bytes_per_event: float
    # the same after inflating, and how many streams were answered compressed
    decoded_per_event: float
    compressed: int
    # CPU seconds per second of writing the drains took to inflate, after the run
    inflate: float
    written_per_s: float
    # CPU seconds per second of writing, per part of the topology, and the whole machine
    cpu: dict[str, float]


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _pid(path: Path) -> int:
    return int(path.read_text().split()[0])


def _groups(work: Path, instance_ports: list[int], client_pids: list[int]) -> dict[str, list]:
    postgres = []
    for data in ("primary", "replica"):
        postgres += _tree(_pid(work / data / "postmaster.pid"))
    nginx = _tree(_pid(work / "nginx.pid"))
    plain = work / "nginx-plain.pid"
    if plain.exists():
        nginx += _tree(_pid(plain))
    return {
        "clients": [p for pid in client_pids for p in _tree(pid)],
        "nginx": nginx,
        "instances": [p for port in instance_ports for p in _tree(_pid(work / f"app-{port}.pid"))],
        "postgres": postgres,
        "pgbouncer": _tree(_pid(work / "pgbouncer.pid")),
        "writer": [psutil.Process(os.getpid())],
    }


def _cpu(groups: dict[str, list]) -> dict[str, float]:
    totals = {}
    for name, procs in groups.items():
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        totals[name] = total
    machine = psutil.cpu_times()
    totals["machine"] = machine.user + machine.system + machine.nice + machine.softirq
    return totals


@contextmanager
def plain_nginx(work: Path) -> Iterator[int]:
    """A second nginx from the topology's own config, its HTTPS server listening on plain
    HTTP instead: the same proxying without TLS, to see what TLS costs."""
    conf = (work / "nginx.conf").read_text()
    listens = [line for line in conf.splitlines() if line.strip().startswith("listen ")]
    https = next(line for line in listens if "ssl" in line)
    redirect = next(line for line in listens if "ssl" not in line)
    conf = (
        conf.replace(https, f"        listen {PLAIN_PORT};")
        .replace(redirect, f"        listen {PLAIN_PORT + 1};")
        .replace(str(work / "nginx.pid"), str(work / "nginx-plain.pid"))
    )
    path = work / "nginx-plain.conf"
    path.write_text(conf)
    subprocess.run(["nginx", "-c", str(path)], check=True)
    try:
        yield PLAIN_PORT
    finally:
        pid_file = work / "nginx-plain.pid"
        if pid_file.exists():
            os.kill(_pid(pid_file), 15)
        time.sleep(0.5)


async def ensure_customer(dsn: str) -> None:
    """Orders need a user; a topology just started has none."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SELECT NOT EXISTS (SELECT 1 FROM users)"):
            await conn.execute(
                "INSERT INTO users (username, email) VALUES ('bench-buyer', 'buyer@example.com')"
            )
    finally:
        await conn.close()


async def write(dsn: str, rate: float, seconds: float) -> dict[int, float]:
    """Orders at `rate`/s from several connections, each on its own share of the rate:
    on a busy machine one connection's round trips alone fall short of 500/s."""
    parts = await asyncio.gather(
        *(_write_steady(dsn, rate / WRITERS, seconds) for _ in range(WRITERS))
    )
    return {order_id: at for part in parts for order_id, at in part.items()}


async def run(
    *,
    via: str,
    targets: list[Target],
    cookie: str,
    clients: int,
    procs: int,
    probes: int,
    rate: float,
    seconds: float,
    dsn: str,
    work: Path,
    instance_ports: list[int],
    gzip: bool = True,
) -> SseRun:
    streams = Clients(targets, cookie, clients, procs=procs, probes=probes, gzip=gzip)
    pids = await streams.start()
    groups = _groups(work, instance_ports, pids)
    try:
        await asyncio.sleep(2.0)
        before, started = _cpu(groups), time.monotonic()
        committed = await write(dsn, rate, seconds)
        after, elapsed = _cpu(groups), time.monotonic() - started
        await asyncio.sleep(1.5)  # the last releases still on their way
    finally:
        outcome = await streams.finish()
    latencies, missing = [], 0
    for order_id, at in committed.items():
        got = outcome.receipts.get(order_id, [])
        missing += outcome.probes - len(got)
        latencies += [(t - at) * 1000 for t in got]
    p50, p99 = _percentiles(latencies)
    wrong = sum(1 for n in outcome.counts if n != len(committed))
    cpu = {k: (after[k] - before[k]) / elapsed for k in before}
    # whatever else runs on the machine meanwhile (it is shared)
    cpu["others"] = cpu["machine"] - sum(v for k, v in cpu.items() if k != "machine")
    return SseRun(
        via=via,
        clients=clients,
        procs=procs,
        p50=p50,
        p99=p99,
        missing=missing,
        wrong_streams=wrong,
        closed_early=outcome.closed_early,
        written_per_s=len(committed) / elapsed,
        bytes_per_event=outcome.bytes_received / clients / max(len(committed), 1),
        decoded_per_event=outcome.bytes_decoded / clients / max(len(committed), 1),
        compressed=outcome.compressed,
        inflate=outcome.inflate_seconds / elapsed,
        cpu=cpu,
    )


def report(result: SseRun) -> str:
    cpu = " ".join(f"{k} {v:.2f}" for k, v in result.cpu.items())
    return (
        f"SSE {result.clients} clients ({result.procs} client procs) via {result.via}:"
        f" {result.written_per_s:.0f} orders/s, p50 {result.p50:.1f} ms,"
        f" p99 {result.p99:.1f} ms, missing {result.missing},"
        f" wrong streams {result.wrong_streams}, closed early {result.closed_early},"
        f" {result.bytes_per_event:.0f} B per event per stream"
        f" ({result.decoded_per_event:.0f} B decoded, {result.compressed} streams gzip,"
        f" inflated after the run in {result.inflate:.2f} CPU s/s);"
        f" {result.bytes_per_event * result.clients * result.written_per_s / 1e6:.1f} MB/s"
        f" to the clients; CPU s/s: {cpu}"
    )
