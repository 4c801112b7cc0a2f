"""A real uvicorn serving the app in a subprocess, for SSE and browser tests.

httpx's ASGITransport buffers whole responses and skips the lifespan, so anything that
streams (SSE, downloads) or needs the lifespan (the listener) is tested against this.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


# What a deployment's environment may hold (a CI job that exported its topology, an
# operator's shell): a server under test takes none of it, only what the test passes. A
# LISTEN_DATABASE_URL left over from the topology job made every such server listen to
# another database, so no live event ever reached a test.
DEPLOYMENT_SETTINGS = frozenset(
    {
        "ADMIN_DATA_DIR",
        "ADMIN_SCHEMAS",
        "BODY_MIN_BYTES_PER_S",
        "BODY_TIMEOUT_S",
        "CATALOG_CHECK_S",
        "CURRENCY",
        "DATABASE_POOLER",
        "DATABASE_REPLICA_URL",
        "EXPORT_SPLIT_MIN_MB",
        "IMPORT_TIMEOUT_S",
        "LISTEN_DATABASE_URL",
        "LOCK_TIMEOUT_MS",
        "LOG_FORMAT",
        "MAX_ANONYMOUS_FORM_KB",
        "MAX_FORM_KB",
        "MAX_UPLOAD_MB",
        "METRICS_ADDRESS",
        "METRICS_TOKEN",
        "POOL_ACQUIRE_TIMEOUT",
        "REPLICA_MAX_LAG_S",
        "SECURE_COOKIES",
        "SESSION_IDLE_HOURS",
        "SESSION_MAX_HOURS",
        "SHOP_TIME_ZONE",
        "SHUTDOWN_GRACE_S",
        "SSE_MAX_PER_PROCESS",
        "SSE_MAX_PER_SESSION",
        "SSE_REPLAY_MAX_EVENTS",
        "SSE_REPLAY_MAX_HOURS",
        "STAFF_CACHE_S",
        "STATEMENT_TIMEOUT_MS",
    }
)


@contextmanager
def live_server(
    database_url: str,
    secret_key: str,
    log_dir: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    workers: int = 1,
    startup_timeout: float = 30.0,
    port: int | None = None,
) -> Iterator[LiveServer]:
    """Start uvicorn on a free 127.0.0.1 port (or `port`, to stand in for a server that
    stopped there) against `database_url`; stop it afterwards."""
    port = port or free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in DEPLOYMENT_SETTINGS},
        "DATABASE_URL": database_url,
        "SECRET_KEY": secret_key,
        "POOL_MIN_SIZE": "1",
        "POOL_MAX_SIZE": "5",
        **(extra_env or {}),
    }
    log_path = log_dir / f"uvicorn-{port}.log"
    command = [
        sys.executable, "-m", "uvicorn", "admin.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--timeout-graceful-shutdown", "3",
    ]  # fmt: skip
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = LiveServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{server.log()}")
            try:
                if httpx.get(server.url + "/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not become healthy:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
