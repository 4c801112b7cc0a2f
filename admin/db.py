"""The connection pool and the errors that turn database trouble into 503s."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.requests import HTTPConnection

from admin.settings import Settings

log = logging.getLogger("admin.db")

Connection = asyncpg.Connection
Pool = asyncpg.Pool


class DatabaseUnavailable(Exception):
    """The database could not be reached; answered with 503 and a Retry-After."""

    retry_after = 5


class PoolExhausted(DatabaseUnavailable):
    """Every pooled connection stayed busy for POOL_ACQUIRE_TIMEOUT seconds."""

    retry_after = 2


# Errors that mean the connection or the server is gone, not that the query was wrong: a
# request meeting one answers 503 and the connection is thrown away, never reused.
CONNECTION_FAILURES: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable; ConnectionError is one
    asyncpg.PostgresConnectionError,  # 08xxx: ConnectionDoesNotExistError, ConnectionFailureError
    asyncpg.AdminShutdownError,  # 57P01: terminated, or the server is shutting down
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,  # "connection is closed", "pool is closing"
    asyncpg.InternalClientError,  # "cannot switch to state ..."
)
# InterfaceErrors about the call itself (bad arguments, options): bugs, answered as such.
# (The interface DataError, not asyncpg.DataError, which is SQLSTATE class 22.)
_CALLER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions._base.DataError,
    asyncpg.ClientConfigurationError,
    asyncpg.UnsupportedClientFeatureError,
    TimeoutError,  # an OSError, but a deadline of ours, not a lost connection
)


def is_connection_failure(exc: BaseException) -> bool:
    """True when `exc` says the database connection (or server) failed, not the statement."""
    return isinstance(exc, CONNECTION_FAILURES) and not isinstance(exc, _CALLER_ERRORS)


def unavailable(exc: BaseException) -> DatabaseUnavailable:
    """The 503 error for a connection-level failure."""
    return DatabaseUnavailable(f"database unreachable: {type(exc).__name__}: {exc}")


async def checkout(pool: asyncpg.Pool, wait_seconds: float) -> asyncpg.Connection:
    """A pooled connection, or PoolExhausted/DatabaseUnavailable instead of waiting forever."""
    try:
        return await pool.acquire(timeout=wait_seconds)
    except TimeoutError:
        raise PoolExhausted("all database connections are busy") from None
    except Exception as exc:
        if is_connection_failure(exc):
            raise unavailable(exc) from exc
        raise


async def checkin(
    pool: asyncpg.Pool, conn: asyncpg.Connection, failure: BaseException | None, wait_seconds: float
) -> None:
    """Give `conn` back; one that failed at the connection level is terminated, not reused."""
    if failure is not None and is_connection_failure(failure):
        # a connection the server closed has already been detached from its proxy
        with contextlib.suppress(asyncpg.InterfaceError):
            conn.terminate()
    try:
        await pool.release(conn, timeout=wait_seconds)
    except Exception as exc:
        # release() has terminated a connection it could not reset and the pool replaces
        # it: the request it served is not the worse for that
        log.warning("connection dropped on release: %s: %s", type(exc).__name__, exc)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release (one round trip per request).

    The pool already rolls back a transaction left open. Beyond that nothing here changes
    session state on a pooled connection: settings are `SET LOCAL`, advisory locks are
    transaction-scoped, LISTEN runs on the hub's own connection, cursors live in transactions.
    """


async def create_pool(settings: Settings, **overrides: Any) -> asyncpg.Pool:
    """Open the pool; codecs and the statement timeout are set once here for every connection."""
    options: dict[str, Any] = {
        "dsn": settings.database_url,
        "min_size": settings.pool_min_size,
        "max_size": settings.pool_max_size,
        "init": _init_connection,
        "reset": _keep_session,
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
    """A pooled connection for a block; a connection-level failure inside it becomes
    DatabaseUnavailable (503) and that connection is discarded."""
    conn = await checkout(pool, wait_seconds)
    failure: BaseException | None = None
    try:
        yield conn
    except Exception as exc:
        failure = exc
        if is_connection_failure(exc):
            raise unavailable(exc) from exc
        raise
    finally:
        await checkin(pool, conn, failure, wait_seconds)


@asynccontextmanager
async def connection(request: HTTPConnection) -> AsyncIterator[asyncpg.Connection]:
    """The request's way to the database: the app's pool with the configured acquire timeout.

    Inside `request_connection` (the route guard opens one per request) this is that same
    connection, so checking the session and serving the page cost one acquire, not two.
    """
    shared: asyncpg.Connection | None = getattr(request.state, "db_connection", None)
    if shared is not None:
        yield shared
        return
    settings: Settings = request.app.state.settings
    async with acquire(request.app.state.pool, settings.pool_acquire_timeout) as conn:
        yield conn


@asynccontextmanager
async def request_connection(request: HTTPConnection) -> AsyncIterator[None]:
    """Share one connection across everything the guard and the handler do.

    Released when the handler returns: a streamed body (SSE, CSV export) that needs the
    database later acquires its own, so nothing is held while a stream waits.
    """
    settings: Settings = request.app.state.settings
    pool: asyncpg.Pool = request.app.state.pool
    conn = await checkout(pool, settings.pool_acquire_timeout)
    request.state.db_connection = conn
    failure: BaseException | None = None
    try:
        yield
    except Exception as exc:
        failure = exc
        if is_connection_failure(exc):
            raise unavailable(exc) from exc
        raise
    finally:
        request.state.db_connection = None
        await checkin(pool, conn, failure, settings.pool_acquire_timeout)
