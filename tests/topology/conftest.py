"""The running topology (deploy/ci/topology.sh): nginx in front of two instances, PgBouncer,
a primary and a streaming replica. Every test here is skipped unless TOPOLOGY_URL is set."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

URL = os.environ.get("TOPOLOGY_URL", "")
pytestmark = pytest.mark.skipif(not URL, reason="needs the topology of deploy/ci/topology.sh")

# how long the replica may take to re-read its settings on a loaded machine
HOLD_TIMEOUT_S = 60.0

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


class DelayedReplica:
    """The replica applying commits `delay` seconds late (recovery_min_apply_delay) until
    `catch_up`. `hold` returns once the replica is seen waiting out the delay, so whatever a
    test writes after it is held back, however slow the machine."""

    def __init__(self, replica: asyncpg.Connection, primary: asyncpg.Connection) -> None:
        self.replica, self.primary = replica, primary

    async def _set(self, setting: str) -> None:
        await self.replica.execute(setting)
        await self.replica.execute("SELECT pg_reload_conf()")

    async def hold(self, delay_s: float = 300.0) -> None:
        await self._set(f"ALTER SYSTEM SET recovery_min_apply_delay = '{delay_s:g}s'")
        deadline = time.monotonic() + HOLD_TIMEOUT_S
        while True:
            # a commit for the replica to hold back, once it has re-read the setting
            await self.primary.execute("SELECT pg_logical_emit_message(true, 'topology', 'hold')")
            waiting = await self.replica.fetchval(
                "SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup'"
            )
            if waiting == "RecoveryApplyDelay":
                return
            assert time.monotonic() < deadline, f"the replica never held a commit ({waiting})"
            await asyncio.sleep(0.2)

    async def catch_up(self) -> None:
        # the startup process re-reads the setting on reload and replays what it held back
        await self._set("ALTER SYSTEM RESET recovery_min_apply_delay")


@pytest.fixture
async def delayed_replica(primary: asyncpg.Connection) -> AsyncIterator[DelayedReplica]:
    conn = await asyncpg.connect(env("TOPOLOGY_REPLICA_URL"))
    replica = DelayedReplica(conn, primary)
    try:
        await replica.hold()
        yield replica
    finally:
        await replica.catch_up()
        await conn.close()
