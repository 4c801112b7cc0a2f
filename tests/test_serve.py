"""`python -m admin serve` as a user runs it: first-run admin, embedded server lifecycle."""

from __future__ import annotations

import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from admin.staff.passwords import verify_password
from tests.cli import (
    cli_env,
    kill_everything_under,
    processes_mentioning,
    run_cli,
    start_serve,
    wait_until_gone,
)
from tests.conftest import TEST_SECRET_KEY

pytestmark = pytest.mark.slow

FIRST_RUN = re.compile(r"First run: log in as 'admin' with password (\S+) ")


def first_run_password(output: list[str]) -> str | None:
    matches = [FIRST_RUN.search(line) for line in output]
    found = [match.group(1) for match in matches if match]
    assert len(found) <= 1
    return found[0] if found else None


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """An ADMIN_DATA_DIR (short path: the server's socket lives in it); nothing may outlive it."""
    directory = Path(tempfile.mkdtemp(prefix="admin-serve-", dir="/tmp"))
    yield directory
    kill_everything_under(directory)
    shutil.rmtree(directory, ignore_errors=True)


def embedded_url(data_dir: Path) -> str:
    return f"postgresql://postgres:@/postgres?host={data_dir / 'pg'}"


async def test_first_serve_creates_admin_once_with_database_url(
    database_url: str, tmp_path: Path, conn: asyncpg.Connection
):
    env = cli_env(
        DATABASE_URL=database_url, SECRET_KEY=TEST_SECRET_KEY, ADMIN_DATA_DIR=str(tmp_path)
    )
    serving = start_serve(env, tmp_path)
    try:
        assert f"Admin panel: {serving.url}/\n" in serving.output
        password = first_run_password(serving.output)
        assert password and len(password) >= 12
        health = httpx.get(serving.url + "/healthz", timeout=5)
        assert health.json() == {"status": "ok", "database": "ok"}
    finally:
        assert serving.stop() == 0
    row = await conn.fetchrow("SELECT role, password_hash FROM staff WHERE username = 'admin'")
    assert row["role"] == "admin"
    assert verify_password(row["password_hash"], password)
    assert password not in serving.stderr()

    again = start_serve(env, tmp_path)
    try:
        assert first_run_password(again.output) is None
        assert not any("password" in line and "admin'" in line for line in again.output)
    finally:
        assert again.stop() == 0
    assert await conn.fetchval("SELECT count(*) FROM staff") == 1


async def test_embedded_serve_keeps_data_across_restarts_and_stops_its_server(data_dir: Path):
    env = cli_env(ADMIN_DATA_DIR=str(data_dir))
    first = start_serve(env, data_dir)
    try:
        assert f"Admin panel: {first.url}/\n" in first.output
        password = first_run_password(first.output)
        assert password
        assert processes_mentioning(data_dir / "pg")
    finally:
        assert first.stop() == 0
    assert wait_until_gone(data_dir / "pg") == []
    secret_key = (data_dir / "secret_key").read_text()

    second = start_serve(env, data_dir)
    try:
        assert first_run_password(second.output) is None
        conn = await asyncpg.connect(embedded_url(data_dir))
        try:
            row = await conn.fetchrow("SELECT password_hash FROM staff WHERE username = 'admin'")
        finally:
            await conn.close()
        assert verify_password(row["password_hash"], password)
        assert (data_dir / "secret_key").read_text() == secret_key

        # another command on the same data dir shares the running server and leaves it up
        loaded = run_cli("demo-data", "--users", "30", "--orders", "40", env=env)
        assert loaded.returncode == 0, loaded.stderr
        assert httpx.get(second.url + "/healthz", timeout=5).status_code == 200
    finally:
        # Ctrl-C: 130, or 0 where the test runner started us with SIGINT ignored
        assert second.stop(signal.SIGINT) in (0, 130)
    assert wait_until_gone(data_dir / "pg") == []


async def test_second_serve_on_the_same_data_dir_refuses(data_dir: Path):
    env = cli_env(ADMIN_DATA_DIR=str(data_dir))
    first = start_serve(env, data_dir)
    try:
        refused = run_cli("serve", "--port", "1", env=env, timeout=60)
        assert refused.returncode == 1
        assert refused.stderr.startswith(
            f"error: the panel is already being served from {data_dir}"
        )
        assert f"(pid {first.process.pid})" in refused.stderr
        assert "Admin panel:" not in refused.stdout
        assert httpx.get(first.url + "/healthz", timeout=5).status_code == 200
    finally:
        assert first.stop() == 0
    assert wait_until_gone(data_dir / "pg") == []


async def test_serve_after_sigkill_adopts_the_orphan_server_and_stops_it(data_dir: Path):
    env = cli_env(ADMIN_DATA_DIR=str(data_dir))
    killed = start_serve(env, data_dir)
    killed.stop(signal.SIGKILL)
    orphans = processes_mentioning(data_dir / "pg")
    assert orphans, "SIGKILL should leave the embedded server running"
    postmaster = min(orphans, key=lambda process: process.pid)

    adopter = start_serve(env, data_dir)
    try:
        assert httpx.get(adopter.url + "/healthz", timeout=5).status_code == 200
        assert postmaster.is_running()  # adopted, not restarted over a live data dir
    finally:
        assert adopter.stop() == 0
    assert wait_until_gone(data_dir / "pg") == []


async def test_embedded_cli_command_starts_and_stops_its_own_server(data_dir: Path):
    env = cli_env(ADMIN_DATA_DIR=str(data_dir))
    result = run_cli("demo-data", "--users", "20", "--orders", "20", env=env)
    assert result.returncode == 0, result.stderr
    assert "users: 20 rows" in result.stdout
    assert wait_until_gone(data_dir / "pg") == []
    again = run_cli("migrate", env=env)
    assert again.stdout == "database is up to date\n"
    assert wait_until_gone(data_dir / "pg") == []
