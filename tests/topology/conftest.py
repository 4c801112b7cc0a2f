"""The running topology (deploy/ci/topology.sh): nginx in front of two instances, PgBouncer,
a primary and a streaming replica. Every test here is skipped unless TOPOLOGY_URL is set."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

URL = os.environ.get("TOPOLOGY_URL", "")
pytestmark = pytest.mark.skipif(not URL, reason="needs the topology of deploy/ci/topology.sh")

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)"')


def env(name: str) -> str:
    return os.environ[name]


def instance_ports() -> list[int]:
    return [int(port) for port in env("TOPOLOGY_INSTANCES").split()]


def https_client() -> httpx.AsyncClient:
    # the CI certificate is self-signed; what is under test is the proxying, not the PKI
    return httpx.AsyncClient(base_url=URL, verify=False, timeout=120)  # noqa: S501


async def log_in(http: httpx.AsyncClient) -> str:
    page = await http.get("/login")
    token = CSRF_META.search(page.text).group(1)  # type: ignore[union-attr]
    response = await http.post(
        "/login",
        data={
            "username": env("TOPOLOGY_ADMIN"),
            "password": env("TOPOLOGY_PASSWORD"),
            "csrf_token": token,
        },
    )
    assert response.status_code == 303, response.text
    home = await http.get("/")
    assert home.status_code == 200
    return CSRF_META.search(home.text).group(1)  # type: ignore[union-attr]


class Admin:
    def __init__(self, http: httpx.AsyncClient, csrf: str) -> None:
        self.http, self.csrf = http, csrf

    async def post(self, url: str, data: dict[str, str] | None = None, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
        return await self.http.post(url, data={"csrf_token": self.csrf, **(data or {})}, **kw)


@pytest.fixture
async def admin() -> AsyncIterator[Admin]:
    async with https_client() as http:
        yield Admin(http, await log_in(http))


@pytest.fixture
async def primary() -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(env("TOPOLOGY_PRIMARY_URL"))
    yield conn
    await conn.close()


@pytest.fixture
async def replica_conn() -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(env("TOPOLOGY_REPLICA_URL"))
    yield conn
    await conn.close()


@pytest.fixture
async def delayed_replica(primary: asyncpg.Connection) -> AsyncIterator[float]:
    """The replica applies WAL this many seconds late (recovery_min_apply_delay)."""
    delay = 3.0
    replica = await asyncpg.connect(env("TOPOLOGY_REPLICA_URL"))
    try:
        await replica.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{delay:g}s'")
        await replica.execute("SELECT pg_reload_conf()")
        yield delay
    finally:
        await replica.execute("ALTER SYSTEM RESET recovery_min_apply_delay")
        await replica.execute("SELECT pg_reload_conf()")
        await replica.close()
