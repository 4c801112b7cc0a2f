"""In-process cost of one list page (`GET /users`, first page, logged in as an admin): the
app's own work per request without an HTTP server or load generator, which on a shared
machine moves less than a throughput figure does. With `--against DIR` it measures another
checkout of the panel (for instance `git archive main` unpacked there) in the same run,
alternating rounds between the two, and prints the ratio.

    flock /tmp/bench.lock python bench/list_render.py [--users 10000] [--rounds 6]
        [--requests 400] [--against /tmp/main-checkout]
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

HERE = Path(__file__).resolve()


def _measure(root: str, database_url: str, requests: int, path: str) -> None:
    """One round with the code under `root`: prints the per-request times as JSON."""
    sys.path.insert(0, root)
    import httpx

    from admin import db
    from admin.app import create_app
    from admin.settings import Settings
    from tests.conftest import TEST_SECRET_KEY, create_staff, log_in

    async def run() -> list[float]:
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(
                database_url=database_url,
                listen_database_url=database_url,
                data_dir=Path(data_dir),
                secret_key=TEST_SECRET_KEY,
                pool_min_size=1,
                pool_max_size=4,
            )
            pool = await db.create_pool(settings)
            try:
                async with pool.acquire() as conn:
                    name = f"bench-{time.monotonic_ns()}"
                    await create_staff(conn, name, "admin")
                app = create_app(settings, pool=pool)
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://testserver"
                ) as http:
                    await log_in(http, name)
                    for _ in range(50):
                        assert (await http.get(path)).status_code == 200
                    times = []
                    for _ in range(requests):
                        start = time.perf_counter()
                        response = await http.get(path)
                        times.append(time.perf_counter() - start)
                        assert response.status_code == 200
                    return times
            finally:
                await pool.close()

    print(json.dumps(asyncio.run(run())))


def _round(root: Path, database_url: str, requests: int, path: str) -> list[float]:
    output = subprocess.run(
        [
            sys.executable,
            str(HERE),
            "--measure",
            str(root),
            "--database",
            database_url,
            "--requests",
            str(requests),
            "--path",
            path,
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
    ).stdout
    return list(json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--path", default="/users")
    parser.add_argument("--against", type=Path)
    parser.add_argument("--measure")
    parser.add_argument("--database")
    args = parser.parse_args()
    if args.measure:
        _measure(args.measure, args.database, args.requests, args.path)
        return
    root = HERE.parent.parent
    sys.path.insert(0, str(root))
    from bench.csv_common import database
    from tests.conftest import TEST_SECRET_KEY

    with database() as url:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "admin",
                "demo-data",
                "--users",
                str(args.users),
                "--orders",
                "0",
                "--products",
                "0",
            ],
            check=True,
            cwd=root,
            env={**os.environ, "DATABASE_URL": url, "SECRET_KEY": TEST_SECRET_KEY},
            capture_output=True,
        )
        checkouts = {"this checkout": root}
        if args.against:
            checkouts["against"] = args.against.resolve()
        medians: dict[str, list[float]] = {name: [] for name in checkouts}
        for _ in range(args.rounds):
            for name, where in checkouts.items():
                times = _round(where, url, args.requests, args.path)
                medians[name].append(statistics.median(times) * 1000)
        print(f"GET {args.path}, {args.users:,} users, {args.rounds} rounds x {args.requests}")
        for name, values in medians.items():
            shown = ", ".join(f"{v:.3f}" for v in values)
            print(f"  {name:14} median of medians {statistics.median(values):.3f} ms  ({shown})")
        if args.against:
            ratio = statistics.median(medians["this checkout"]) / statistics.median(
                medians["against"]
            )
            print(f"  ratio this/against: {ratio:.3f}  (throughput change {1 / ratio - 1:+.1%})")


if __name__ == "__main__":
    main()
