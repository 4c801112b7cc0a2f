"""The test run's PostgreSQL: DATABASE_URL if set, else an embedded server in a temp dir."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from admin import embedded
from admin.migrations import migrate


def with_database(url: str, name: str) -> str:
    """`url` pointed at database `name` (keeps host, port, user and query such as ?host=)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextmanager
def server_url() -> Iterator[str]:
    """A URL to a maintenance database on the server the tests use."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    base = Path(tempfile.mkdtemp(prefix="admin-tests-", dir="/tmp"))
    server = embedded.start(base)
    try:
        yield server.get_uri()
    finally:
        embedded.stop(server)
        shutil.rmtree(base, ignore_errors=True)


async def create_template(url: str) -> str:
    """A migrated database that every test's database is copied from."""
    name = f"admin_tmpl_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    conn = await asyncpg.connect(with_database(url, name))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return name


async def create_database(url: str, template: str) -> str:
    name = f"admin_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return name


async def create_empty_database(url: str) -> str:
    name = f"admin_empty_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(url: str, name: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def run(coro):  # type: ignore[no-untyped-def]
    """Run a coroutine to completion from sync code, even where a loop is already running
    in this thread (Playwright's sync API keeps one there)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, coro).result()
