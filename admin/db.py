"""The connection pool and the errors that turn database trouble into 503s."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg
from starlette.requests import HTTPConnection

from admin import pg_values
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


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


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
    if "\\u0000" in text or "\\ud" in text:
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


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind, encoder=_json_dumps, decoder=_json_loads, schema="pg_catalog"
        )
    for kind, encoder, decoder in _DATETIME_CODECS:
        await conn.set_type_codec(
            kind, encoder=encoder, decoder=decoder, schema="pg_catalog", format="tuple"
        )


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
    try:
        conn = await pool.acquire(timeout=settings.pool_acquire_timeout)
    except TimeoutError:
        raise PoolExhausted("all database connections are busy") from None
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailable(f"database unreachable: {exc}") from exc
    request.state.db_connection = conn
    try:
        yield
    finally:
        request.state.db_connection = None
        await pool.release(conn)


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
