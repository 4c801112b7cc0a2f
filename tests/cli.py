"""Running `python -m admin ...` in a subprocess with a controlled environment."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from tests.live import free_port

ROOT = Path(__file__).resolve().parent.parent
# Variables of the panel's own configuration: never inherited from the test run's shell.
CONFIG_VARIABLES = (
    "DATABASE_URL", "LISTEN_DATABASE_URL", "SECRET_KEY", "ADMIN_DATA_DIR", "ADMIN_PASSWORD",
    "POOL_MIN_SIZE", "POOL_MAX_SIZE", "POOL_ACQUIRE_TIMEOUT", "HOST", "PORT",
)  # fmt: skip


def cli_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(variables)
    return env


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "admin", *args],
        cwd=ROOT,
        env=dict(env),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def processes_mentioning(directory: Path) -> list[psutil.Process]:
    """Live processes whose command line contains `directory` (an embedded server's)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(str(directory) in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def wait_until_gone(directory: Path, timeout: float = 20.0) -> list[psutil.Process]:
    """Wait (bounded) for every process mentioning `directory` to exit; returns survivors."""
    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(directory)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def kill_everything_under(directory: Path) -> None:
    for process in processes_mentioning(directory):
        with contextlib.suppress(psutil.Error):
            process.kill()


@dataclass
class Serving:
    """A `python -m admin serve` subprocess and what it printed."""

    process: subprocess.Popen[str]
    url: str
    output: list[str]
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_serve(env: Mapping[str, str], log_dir: Path, startup_timeout: float = 90) -> Serving:
    """Run `serve` on a free port; return once it printed its URL and /healthz answers 200."""
    port = free_port()
    stderr_path = log_dir / f"serve-{port}.stderr"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "admin", "serve", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)

    threading.Thread(target=pump, daemon=True).start()
    serving = Serving(process, f"http://127.0.0.1:{port}", output, stderr_path)
    deadline = time.monotonic() + startup_timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}:\n{serving.stderr()}")
        if any(line.startswith("Admin panel:") for line in output):
            try:
                if httpx.get(serving.url + "/healthz", timeout=2).status_code == 200:
                    return serving
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            serving.stop(signal.SIGKILL)
            raise RuntimeError(
                f"serve did not become healthy:\n{''.join(output)}{serving.stderr()}"
            )
        time.sleep(0.1)
