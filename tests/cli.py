"""Running `python -m admin ...` in a subprocess with a controlled environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

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
