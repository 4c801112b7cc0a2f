"""Production topology: list throughput through nginx (two instances) vs one instance
direct, the list through PgBouncer vs a direct database connection, and SSE latency for
2,000 clients spread over two instances behind nginx at 500 events/s, against a bare
LISTEN/NOTIFY listener measured in the same run.

Needs the topology up: `bash deploy/ci/topology.sh up` (prints the TOPOLOGY_* variables),
then: flock /tmp/bench.lock python bench/topology.py [--seconds 10] [--clients 16]
A third instance (port 28003, DATABASE_URL straight to the primary) is started for the
PgBouncer comparison and stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sse_fanout import ORDER, _percentiles, _raw_listen_latency, _write_steady  # noqa: E402

DIRECT_PORT = 28003
LIST_PATH = "/users"


def _tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the CI certificate is self-signed
    return context


async def _get_loop(host: str, port: int, tls: bool, cookie: str, stop: float) -> int:
    reader, writer = await asyncio.open_connection(host, port, ssl=_tls() if tls else None)
    request = (
        f"GET {LIST_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
        "Accept: text/html\r\n\r\n"
    ).encode()
    done = 0
    try:
        while time.perf_counter() < stop:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.split(b" ", 2)[1] == b"200", head[:200]
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            done += 1
    finally:
        writer.close()
    return done


async def throughput(
    host: str, port: int, tls: bool, cookie: str, clients: int, seconds: float
) -> float:
    await _get_loop(host, port, tls, cookie, time.perf_counter() + 1.0)  # warm up
    started = time.perf_counter()
    counts = await asyncio.gather(
        *(_get_loop(host, port, tls, cookie, started + seconds) for _ in range(clients))
    )
    return sum(counts) / (time.perf_counter() - started)


async def login(base: str, verify: bool) -> str:
    async with httpx.AsyncClient(base_url=base, verify=verify) as http:
        page = await http.get("/login")
        token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        response = await http.post(
            "/login",
            data={
                "username": os.environ["TOPOLOGY_ADMIN"],
                "password": os.environ["TOPOLOGY_PASSWORD"],
                "csrf_token": token,
            },
        )
        assert response.status_code == 303, response.text
        return "; ".join(f"{k}={v}" for k, v in http.cookies.items())


def start_direct_instance(work: Path) -> None:
    env_lines = (work / "env").read_text().splitlines()
    primary = os.environ["TOPOLOGY_PRIMARY_URL"]
    direct = [f"DATABASE_URL={primary}" if x.startswith("DATABASE_URL=") else x for x in env_lines]
    (work / "env-direct").write_text("\n".join([*direct, "DATABASE_POOLER=none"]) + "\n")
    subprocess.run(
        ["bash", "deploy/ci/instance.sh", "start", str(work), str(DIRECT_PORT)],
        cwd=ROOT, check=True, env={**os.environ, "TOPO_ENV_FILE": "env-direct"},
    )  # fmt: skip


# ---- SSE through nginx ---------------------------------------------------------------


class _Stream(asyncio.Protocol):
    def __init__(self, request: bytes, receipts: dict[int, list[float]] | None) -> None:
        self._request, self._receipts, self._tail = request, receipts, b""
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
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
    context = _tls()
    for start in range(0, count, 50):
        batch = [
            _Stream(request, receipts if i % (count // probes) == 0 else None)
            for i in range(start, min(start + 50, count))
        ]
        for stream in batch:
            transport, _ = await loop.create_connection(
                lambda s=stream: s, "127.0.0.1", port, ssl=context
            )
            transports.append(transport)
        async with asyncio.timeout(60):
            await asyncio.gather(*(stream.opened for stream in batch))
    print("ready", flush=True)
    await asyncio.sleep(seconds)
    for transport in transports:
        transport.close()
    print(json.dumps({"receipts": receipts}), flush=True)


async def sse(
    port: int, cookie: str, clients: int, rate: float, seconds: float
) -> tuple[float, float, int]:
    probes = 20
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--clients", str(port), cookie, str(clients), str(probes),
        str(seconds + 3), stdout=asyncio.subprocess.PIPE, limit=2**28,
    )  # fmt: skip
    assert proc.stdout is not None
    assert (await proc.stdout.readline()).strip() == b"ready"
    await asyncio.sleep(2.0)
    committed = await _write_steady(os.environ["TOPOLOGY_PRIMARY_URL"], rate, seconds)
    out = json.loads(await proc.stdout.readline())
    await proc.wait()
    latencies, missing = [], 0
    for order_id, at in committed.items():
        got = out["receipts"].get(str(order_id), [])
        missing += probes - len(got)
        latencies += [(t - at) * 1000 for t in got]
    p50, p99 = _percentiles(latencies)
    return p50, p99, missing


async def main(args: argparse.Namespace) -> None:
    nginx = urlsplit(os.environ["TOPOLOGY_URL"])
    first = int(os.environ["TOPOLOGY_INSTANCES"].split()[0])
    work = Path(os.environ["TOPOLOGY_RESTART"].split()[-2])
    start_direct_instance(work)
    try:
        proxied_cookie = await login(os.environ["TOPOLOGY_URL"], verify=False)
        direct_cookie = await login(f"http://127.0.0.1:{first}", verify=True)
        results = {}
        for label, host, port, tls, cookie in [
            ("one instance direct (PgBouncer)", "127.0.0.1", first, False, direct_cookie),
            ("nginx, two instances (PgBouncer)", nginx.hostname, nginx.port, True, proxied_cookie),
            ("one instance, database direct", "127.0.0.1", DIRECT_PORT, False, direct_cookie),
        ]:
            results[label] = await throughput(host, port, tls, cookie, args.clients, args.seconds)
            print(f"{label:36s} {results[label]:8.0f} pages/s", flush=True)
        a, b, c = results.values()
        print(f"nginx + 2 instances / 1 instance direct: {b / a:.2f}x")
        print(f"PgBouncer / direct database:            {a / c:.2f}x (target >= 0.8x)")
        raw = await _raw_listen_latency(os.environ["TOPOLOGY_PRIMARY_URL"], args.rate, 5.0)
        print(f"reference: bare LISTEN p50 {raw[0]:.1f} ms, p99 {raw[1]:.1f} ms")
        p50, p99, missing = await sse(
            nginx.port or 443, proxied_cookie, args.sse_clients, args.rate, args.seconds
        )
        print(
            f"SSE {args.sse_clients} clients via nginx at {args.rate:.0f} events/s:"
            f" p50 {p50:.1f} ms, p99 {p99:.1f} ms (target < 150 ms), missing {missing}"
        )
    finally:
        subprocess.run(
            ["bash", "deploy/ci/instance.sh", "stop", str(work), str(DIRECT_PORT)], cwd=ROOT
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--clients":
        port, cookie, count, probes, secs = sys.argv[2:7]
        asyncio.run(_clients(int(port), cookie, int(count), int(probes), float(secs)))
        sys.exit(0)
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--sse-clients", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500.0)
    asyncio.run(main(parser.parse_args()))
