"""GET /healthz: is the app up, does its database answer, and is the pool busy?

The database is asked over a connection of the check's own, never a pooled one: a pool
busy serving pages is load, not an outage, and must not make the check report one.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from admin import db

HEALTH_TIMEOUT_SECONDS = 2.0
NO_STORE = {"Cache-Control": "no-store"}


class DatabaseProbe:
    """One connection kept for health checks: opened on first use, reopened when it fails."""

    def __init__(self, dsn: str, timeout: float = HEALTH_TIMEOUT_SECONDS) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> None:
        """Raise DatabaseUnavailable unless the database answers within the timeout."""
        try:
            async with asyncio.timeout(self._timeout), self._lock:
                try:
                    await self._select_one()
                except Exception as exc:
                    if not db.is_connection_failure(exc):
                        raise
                    # a connection from before a server restart: one fresh attempt
                    await self._select_one()
        except TimeoutError:
            self._drop()
            raise db.DatabaseUnavailable("database did not answer in time") from None
        except Exception as exc:
            self._drop()
            if db.is_connection_failure(exc) or isinstance(exc, asyncpg.PostgresError):
                raise db.unavailable(exc) from exc
            raise

    async def _select_one(self) -> None:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn,
                server_settings={"application_name": "pg-admin-panel health"},
                # no named statements: DATABASE_URL may be a transaction pooler (PgBouncer)
                statement_cache_size=0,
            )
        try:
            await self._conn.fetchval("SELECT 1")
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self._timeout)
            conn.terminate()


def start(app: Starlette) -> None:
    """Keep a probe for the app's lifetime (the lifespan calls this once the database is known)."""
    app.state.health_probe = DatabaseProbe(app.state.settings.database_url)


async def stop(app: Starlette) -> None:
    probe: DatabaseProbe | None = getattr(app.state, "health_probe", None)
    if probe is not None:
        await probe.close()


async def _check_database(request: Request) -> None:
    probe: DatabaseProbe | None = getattr(request.app.state, "health_probe", None)
    if probe is not None:
        await probe.check()
        return
    # without the lifespan (an app built around an existing pool) a one-off connection
    one_off = DatabaseProbe(request.app.state.settings.database_url)
    try:
        await one_off.check()
    finally:
        await one_off.close()


def _pool_load(pool: asyncpg.Pool | None) -> dict[str, object]:
    """ "busy" with the numbers when every pooled connection is in use; nothing otherwise."""
    if pool is None:
        return {}
    size, idle, most = pool.get_size(), pool.get_idle_size(), pool.get_max_size()
    if idle > 0 or size < most:
        return {}
    return {"pool": "busy", "pool_in_use": size - idle, "pool_max": most}


async def healthz(request: Request) -> Response:
    try:
        await _check_database(request)
    except db.DatabaseUnavailable as exc:
        return JSONResponse(
            {"status": "error", "database": "unavailable", "reason": str(exc)},
            status_code=503,
            headers={"Retry-After": str(exc.retry_after), **NO_STORE},
        )
    body = {"status": "ok", "database": "ok", **_pool_load(request.app.state.pool)}
    return JSONResponse(body, headers=NO_STORE)
