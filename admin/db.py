"""The connection pool and the errors that turn database trouble into 503s."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.requests import HTTPConnection

from admin.settings import Settings

Connection = asyncpg.Connection
Pool = asyncpg.Pool


class DatabaseUnavailable(Exception):
    """The database could not be reached; answered with 503 and a Retry-After."""

    retry_after = 5


class PoolExhausted(DatabaseUnavailable):
    """Every pooled connection stayed busy for POOL_ACQUIRE_TIMEOUT seconds."""

    retry_after = 2


UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(settings: Settings, **overrides: Any) -> asyncpg.Pool:
    """Open the pool; codecs and the statement timeout are set once here for every connection."""
    options: dict[str, Any] = {
        "dsn": settings.database_url,
        "min_size": settings.pool_min_size,
        "max_size": settings.pool_max_size,
        "init": _init_connection,
        "command_timeout": None,
        "server_settings": {
            "application_name": "pg-admin-panel",
            "statement_timeout": str(settings.statement_timeout_ms),
        },
    }
    options.update(overrides)
    return await asyncpg.create_pool(**options)


@asynccontextmanager
async def acquire(pool: asyncpg.Pool, wait_seconds: float) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection, or PoolExhausted/DatabaseUnavailable instead of waiting forever."""
    try:
        conn = await pool.acquire(timeout=wait_seconds)
    except TimeoutError:
        raise PoolExhausted("all database connections are busy") from None
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailable(f"database unreachable: {exc}") from exc
    try:
        yield conn
    finally:
        await pool.release(conn)


@asynccontextmanager
async def connection(request: HTTPConnection) -> AsyncIterator[asyncpg.Connection]:
    """The request's way to the database: the app's pool with the configured acquire timeout."""
    settings: Settings = request.app.state.settings
    async with acquire(request.app.state.pool, settings.pool_acquire_timeout) as conn:
        yield conn


async def ping(pool: asyncpg.Pool, wait_seconds: float) -> None:
    """Raise DatabaseUnavailable unless a trivial query answers within `wait_seconds`."""
    try:
        async with asyncio.timeout(wait_seconds):
            async with acquire(pool, wait_seconds) as conn:
                await conn.fetchval("SELECT 1")
    except TimeoutError:
        raise DatabaseUnavailable("database did not answer in time") from None
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailable(f"database unreachable: {exc}") from exc
