"""Production topology: list throughput through nginx (two instances) vs one instance
direct, the list through PgBouncer vs a direct database connection, and SSE latency for
2,000 clients spread over two instances behind nginx at 500 events/s, against a bare
LISTEN/NOTIFY listener measured in the same run.

Needs the topology up: `bash deploy/ci/topology.sh up` (prints the TOPOLOGY_* variables),
then: flock /tmp/bench.lock python bench/topology.py [--seconds 10] [--clients 16]
A third instance (port 28003, DATABASE_URL straight to the primary) is started for the
PgBouncer comparison and stopped at the end.

SSE only, at several client counts and through each route (TLS through nginx, plain HTTP
through a second nginx with the same config, the instances directly), to see where the
time goes: --sse-only --sse-counts 500,1000,2000 --sse-via nginx-tls,nginx-http,direct
The clients run in --client-procs processes (bench/sse_clients.py) and ask for gzip as
browsers do; --no-gzip for plain streams. Another topology on the same machine: set
TOPO_PLAIN_PORT and TOPO_DIRECT_PORT besides the TOPO_*_PORT of deploy/ci/topology.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import topology_sse  # noqa: E402
from bench.sse_clients import Target  # noqa: E402
from bench.sse_fanout import _raw_listen_latency  # noqa: E402

DIRECT_PORT = int(os.environ.get("TOPO_DIRECT_PORT", "28003"))
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


async def lists(args: argparse.Namespace, work: Path, direct_cookie: str) -> None:
    nginx = urlsplit(os.environ["TOPOLOGY_URL"])
    first = int(os.environ["TOPOLOGY_INSTANCES"].split()[0])
    start_direct_instance(work)
    try:
        proxied_cookie = await login(os.environ["TOPOLOGY_URL"], verify=False)
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
    finally:
        subprocess.run(
            ["bash", "deploy/ci/instance.sh", "stop", str(work), str(DIRECT_PORT)], cwd=ROOT
        )


async def sse(args: argparse.Namespace, work: Path, cookie: str) -> None:
    """SSE at each client count, through each route: the route the target is about (TLS
    through nginx) and, to locate the cost, plain HTTP through nginx and the instances
    directly. Streams are spread evenly over the two instances in every route."""
    primary = os.environ["TOPOLOGY_PRIMARY_URL"]
    ports = [int(p) for p in os.environ["TOPOLOGY_INSTANCES"].split()]
    await topology_sse.ensure_customer(primary)
    raw = await _raw_listen_latency(primary, args.rate, 5.0)
    print(f"reference: bare LISTEN p50 {raw[0]:.1f} ms, p99 {raw[1]:.1f} ms", flush=True)
    tls_port = urlsplit(os.environ["TOPOLOGY_URL"]).port or 443
    with topology_sse.plain_nginx(work) as plain_port:
        routes = {
            # nginx round-robins: two streams in a row land on the two instances
            "nginx-tls": [Target("127.0.0.1", tls_port, True)],
            "nginx-http": [Target("127.0.0.1", plain_port, False)],
            "direct": [Target("127.0.0.1", port, False) for port in ports],
        }
        for count in args.sse_counts:
            for via in args.sse_via:
                result = await topology_sse.run(
                    via=via, targets=routes[via], cookie=cookie, clients=count,
                    procs=args.client_procs, probes=args.probes, rate=args.rate,
                    seconds=args.seconds, dsn=primary, work=work, instance_ports=ports,
                    gzip=args.gzip,
                )  # fmt: skip
                print(topology_sse.report(result), flush=True)
                await asyncio.sleep(3.0)  # the instances drop the closed streams


async def main(args: argparse.Namespace) -> None:
    work = Path(os.environ["TOPOLOGY_RESTART"].split()[-2])
    first = int(os.environ["TOPOLOGY_INSTANCES"].split()[0])
    # the session cookie is signed with the shared key: it is valid on every instance
    cookie = await login(f"http://127.0.0.1:{first}", verify=True)
    if not args.sse_only:
        await lists(args, work, cookie)
    await sse(args, work, cookie)


def _words(value: str) -> list[str]:
    routes = {"nginx-tls", "nginx-http", "direct"}
    words = [w for w in value.split(",") if w]
    unknown = [w for w in words if w not in routes]
    if unknown or not words:
        raise argparse.ArgumentTypeError(f"routes are {sorted(routes)}, got {value!r}")
    return words


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--sse-only", action="store_true", help="skip the list pages")
    parser.add_argument(
        "--sse-counts", type=lambda v: [int(n) for n in v.split(",")], default=[2000]
    )
    parser.add_argument("--sse-via", type=_words, default=["nginx-tls"])
    parser.add_argument("--client-procs", type=int, default=3)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument(
        "--gzip",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="streams ask for gzip as browsers do (--no-gzip: plain)",
    )
    asyncio.run(main(parser.parse_args()))
