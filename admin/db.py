"""The connection pool and the errors that turn database trouble into 503s."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg
from starlette.requests import HTTPConnection

from admin import pg_values
from admin.ops import metrics
from admin.settings import Settings

# opening a new connection takes a few milliseconds; longer means the pool is busy
SPARE_ACQUIRE_SECONDS = 1.0
# the share of the pool's connections a spare one must leave free for other requests
SPARE_HEADROOM = 0.25

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


async def wait_for_locks(conn: asyncpg.Connection) -> None:
    """Let the statements of the transaction in progress wait for locks as long as their
    statement timeout allows, past the pool's LOCK_TIMEOUT_MS: for work that is meant to
    queue behind others (imports into one table, migrations, the demo's loads)."""
    await conn.execute("SELECT set_config('lock_timeout', '0', true)")


def unavailable(exc: BaseException) -> DatabaseUnavailable:
    """The 503 error for a connection-level failure."""
    return DatabaseUnavailable(f"database unreachable: {type(exc).__name__}: {exc}")


async def checkout(pool: asyncpg.Pool, wait_seconds: float) -> asyncpg.Connection:
    """A pooled connection, or PoolExhausted/DatabaseUnavailable instead of waiting forever."""
    metrics.POOL_WAITING.inc()
    try:
        return await pool.acquire(timeout=wait_seconds)
    except TimeoutError:
        metrics.POOL_ACQUIRE_TIMEOUTS.inc()
        raise PoolExhausted("all database connections are busy") from None
    except Exception as exc:
        if is_connection_failure(exc):
            raise unavailable(exc) from exc
        raise
    finally:
        metrics.POOL_WAITING.dec()


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


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# the same characters as json.dumps escapes them (U+D000-U+D7FF, Hangul among them, are fine)
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|d[89a-f])", re.IGNORECASE)


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def _json_dumps(value: Any) -> str:
    """JSON that jsonb accepts: it refuses \\u0000 and lone surrogates, which any text typed
    into a request may hold (an audit entry records filters and values as given), so those
    become U+FFFD instead of failing the write."""
    text = json.dumps(value)
    if _UNSTORABLE_ESCAPE.search(text):
        return json.dumps(_storable(value))
    return text


def _json_loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        # jsonb holds numbers of any size; Python refuses integers over 4,300 digits
        return json.loads(text, parse_int=Decimal)


# Every value PostgreSQL can store must decode: dates and times outside Python's years 1-9999
# (infinity, BC, year 20000) become pg_values.PgDateTime instead of raising OverflowError.
_DATETIME_CODECS = (
    ("date", pg_values.encode_date, pg_values.decode_date),
    ("timestamp", pg_values.encode_timestamp, pg_values.decode_timestamp),
    ("timestamptz", pg_values.encode_timestamptz, pg_values.decode_timestamptz),
)


# A Unix socket's send buffer stays at net.core.wmem_default (208 KB: 9 ms of an import's
# COPY, which ran dry whenever the event loop was busy that long), where a TCP socket's grows
# by itself to tcp_wmem's maximum. The kernel grants at most net.core.wmem_max, and holds
# that much only while a COPY sends faster than the backend reads.
UNIX_SEND_BUFFER_BYTES = 4 << 20


async def _init_connection(conn: asyncpg.Connection) -> None:
    _widen_unix_send_buffer(conn)
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind, encoder=_json_dumps, decoder=_json_loads, schema="pg_catalog"
        )
    for kind, encoder, decoder in _DATETIME_CODECS:
        await conn.set_type_codec(
            kind, encoder=encoder, decoder=decoder, schema="pg_catalog", format="tuple"
        )


def _widen_unix_send_buffer(conn: asyncpg.Connection) -> None:
    transport = getattr(conn, "_transport", None)  # asyncpg keeps its socket private
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and sock.family == socket.AF_UNIX:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, UNIX_SEND_BUFFER_BYTES)


async def install_codecs(conn: asyncpg.Connection) -> None:
    """The pool's codecs on a connection of its own (the live hub's LISTEN connection reads
    order_events, whose created_at any writer may set to infinity or year 20000)."""
    await _init_connection(conn)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release (one round trip per request).

    The pool already rolls back a transaction left open. Beyond that nothing here changes
    session state on a pooled connection: settings are `SET LOCAL`, advisory locks are
    transaction-scoped, LISTEN runs on the hub's own connection, cursors live in transactions.
    """


APPLICATION_NAME = "pg-admin-panel"


def connect_options(settings: Settings, *, pooled: bool | None = None) -> dict[str, Any]:
    """asyncpg options for a connection to DATABASE_URL, adapted to a transaction pooler.

    Through PgBouncer in transaction mode (1.18 has no `max_prepared_statements`) each
    transaction may land on another server connection, so no named prepared statement may
    outlive it: the statement cache is off (asyncpg then parses unnamed statements, which
    live within one round of messages). PgBouncer also refuses startup parameters other than
    a few (`statement_timeout` among the refused): its `connect_query` sets the timeouts.

    Cached statements are always planned for their values: after five runs PostgreSQL may
    switch a statement to one plan for any value, and for a search pattern or a filter on a
    skewed column that plan can be a full scan (a one-user search went from 1 ms to 2 s).
    Unnamed statements (the pooler's) are always planned for their values anyway.
    """
    pooler = settings.database_pooler if pooled is None else pooled
    server_settings = {"application_name": APPLICATION_NAME}
    if not pooler:
        server_settings["statement_timeout"] = str(settings.statement_timeout_ms)
        server_settings["lock_timeout"] = str(settings.lock_timeout_ms)
        server_settings["plan_cache_mode"] = "force_custom_plan"
    options: dict[str, Any] = {"server_settings": server_settings}
    if pooler:
        options["statement_cache_size"] = 0
    return options


async def connect(settings: Settings, dsn: str | None = None) -> asyncpg.Connection:
    """One connection of its own to DATABASE_URL (or `dsn` on the same server), pooler-safe."""
    return await asyncpg.connect(dsn or settings.database_url, **connect_options(settings))


async def create_pool(
    settings: Settings, *, dsn: str | None = None, pooled: bool | None = None, **overrides: Any
) -> asyncpg.Pool:
    """Open the pool; codecs and the statement timeout are set once here for every connection."""
    options: dict[str, Any] = {
        "dsn": dsn or settings.database_url,
        "min_size": settings.pool_min_size,
        "max_size": settings.pool_max_size,
        "init": _init_connection,
        "reset": _keep_session,
        "command_timeout": None,
        **connect_options(settings, pooled=pooled),
    }
    options.update(overrides)
    return await asyncpg.create_pool(**options)


def pool_gauges(pool: asyncpg.Pool) -> dict[str, float]:
    """The pool's size and use, for /metrics."""
    size = pool.get_size()
    return {
        "admin_db_pool_size": size,
        "admin_db_pool_in_use": size - pool.get_idle_size(),
        "admin_db_pool_max": pool.get_max_size(),
    }


async def spare(pool: asyncpg.Pool) -> asyncpg.Connection | None:
    """A connection the pool can give at once (an idle one, or a new one below its maximum)
    that still leaves SPARE_HEADROOM of the pool free for other requests, or None: a spare
    connection speeds one request up, and must never make another wait for one. Give it
    back with checkin."""
    most = pool.get_max_size()
    free = pool.get_idle_size() + most - pool.get_size()
    if free <= max(1, int(most * SPARE_HEADROOM)):
        return None
    try:
        return await pool.acquire(timeout=SPARE_ACQUIRE_SECONDS)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return None


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
    request.state.db_connection_handed_over = False
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
        if not request.state.db_connection_handed_over:
            await checkin(pool, conn, failure, settings.pool_acquire_timeout)


def hand_over(request: HTTPConnection) -> asyncpg.Connection | None:
    """The request's shared connection, for work that outlives the handler (a streamed
    export's COPY): the taker gives it back to the app's pool, not request_connection. None
    outside request_connection. A stream that took a second connection instead would hold
    two at its start, and exports starting together could take the whole pool between them."""
    conn: asyncpg.Connection | None = getattr(request.state, "db_connection", None)
    if conn is not None:
        request.state.db_connection = None
        request.state.db_connection_handed_over = True
    return conn
