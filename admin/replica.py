"""Reads from a streaming replica when it holds what the reader needs; the primary otherwise.

Handlers that only read (lists, counts, exports, aggregates) take their connection from
`read_connection(request)`. It is the replica when one is configured (DATABASE_REPLICA_URL),
reachable, no further behind than REPLICA_MAX_LAG_S, and has replayed this staff member's
own last write; in every other case it is the primary.

"Replayed" compares WAL positions, never a timer: after an unsafe request (POST, PUT, PATCH,
DELETE) the primary's WAL position is kept in a signed cookie (`note_write` records it
explicitly; the middleware does it for any unsafe request that did not), and reads go to the
primary until the replica's replay position has passed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from itsdangerous import BadSignature, Signer
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin import db
from admin.ops import metrics
from admin.settings import Settings

log = logging.getLogger("admin.replica")

POLL_SECONDS = 0.5
POLL_TIMEOUT_SECONDS = 2.0
COOKIE = "admin_wal"
# the replica's replay position is compared with the primary's WAL position as a number
_LSN_SQL = "SELECT (pg_current_wal_lsn() - '0/0')::bigint"
_REPLAY_SQL = "SELECT (pg_last_wal_replay_lsn() - '0/0')::bigint"
# a write whose position could not be read: reads go to the primary while the cookie lasts
UNKNOWN_POSITION = 2**63 - 1
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Replica:
    """The replica's pool and what the monitor last learned about it."""

    pool: asyncpg.Pool
    max_lag_s: float
    replay_lsn: int = -1
    lag_s: float = float("inf")
    reachable: bool = False
    usable: bool = False
    task: asyncio.Task[None] | None = None

    def gauges(self) -> dict[str, float]:
        return {
            "admin_db_replica_usable": 1.0 if self.usable else 0.0,
            "admin_db_replica_lag_seconds": self.lag_s if self.lag_s != float("inf") else -1.0,
        }


class _LagClock:
    """How long ago the primary passed a WAL position, from samples of its position."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque(maxlen=2000)

    def add(self, at: float, lsn: int) -> None:
        if not self._samples or self._samples[-1][1] != lsn:
            self._samples.append((at, lsn))

    def lag(self, replayed: int, now: float) -> float:
        """0 when the replica has everything the primary had at the last sample; else the
        time since the primary first wrote past what the replica has replayed."""
        if not self._samples or replayed >= self._samples[-1][1]:
            return 0.0
        for at, lsn in self._samples:
            if lsn > replayed:
                return now - at
        return 0.0  # unreachable: the last sample is past `replayed`


async def start(app: Starlette) -> Replica | None:
    """Open the replica's pool (if configured) and start watching its lag."""
    settings: Settings = app.state.settings
    if settings.replica_database_url is None:
        app.state.replica = None
        return None
    pool = await db.create_pool(
        settings, dsn=settings.replica_database_url, pooled=False, min_size=0
    )
    replica = Replica(pool=pool, max_lag_s=settings.replica_max_lag_s)
    replica.task = asyncio.create_task(_watch(app, replica), name="replica-monitor")
    app.state.replica = replica
    return replica


async def stop(app: Starlette) -> None:
    replica: Replica | None = getattr(app.state, "replica", None)
    if replica is None:
        return
    app.state.replica = None
    if replica.task is not None:
        replica.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await replica.task
    try:
        await asyncio.wait_for(replica.pool.close(), 3.0)
    except TimeoutError:
        replica.pool.terminate()


async def _watch(app: Starlette, replica: Replica) -> None:
    clock = _LagClock()
    settings: Settings = app.state.settings
    while True:
        try:
            async with asyncio.timeout(POLL_TIMEOUT_SECONDS):
                async with db.acquire(app.state.pool, settings.pool_acquire_timeout) as primary:
                    clock.add(time.monotonic(), await primary.fetchval(_LSN_SQL))
                async with db.acquire(replica.pool, POLL_TIMEOUT_SECONDS) as conn:
                    replayed = await conn.fetchval(_REPLAY_SQL)
            replica.reachable = replayed is not None  # None: not a standby at all
            replica.replay_lsn = replayed if replayed is not None else -1
            replica.lag_s = clock.lag(replica.replay_lsn, time.monotonic())
        except (TimeoutError, db.DatabaseUnavailable, asyncpg.PostgresError) as exc:
            if replica.reachable:
                log.warning("replica unreachable, reading from the primary: %s", exc)
            replica.reachable = False
            replica.lag_s = float("inf")
        _update_usable(replica)
        await asyncio.sleep(POLL_SECONDS)


def _update_usable(replica: Replica) -> None:
    usable = replica.reachable and replica.lag_s <= replica.max_lag_s
    if usable != replica.usable:
        if usable:
            log.info("replica caught up (lag %.1f s): reads go to it again", replica.lag_s)
        elif replica.reachable:
            log.warning(
                "replica %.1f s behind (more than %.0f s): reading from the primary",
                replica.lag_s,
                replica.max_lag_s,
            )
    replica.usable = usable


def _signer(settings: Settings) -> Signer:
    return Signer(settings.secret_key, salt="admin-wal-position")


def _written_position(request: HTTPConnection) -> int | None:
    """The WAL position of this client's last write: this request's, else its cookie's."""
    noted: int | None = getattr(request.state, "wal_position", None)
    if noted is not None:
        return noted
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        value = _signer(request.app.state.settings).unsign(raw).decode("ascii")
    except (BadSignature, UnicodeDecodeError):
        return None
    return int(value) if value.isascii() and value.isdigit() and len(value) < 20 else None


def _target(request: HTTPConnection) -> tuple[Replica | None, str]:
    replica: Replica | None = getattr(request.app.state, "replica", None)
    if replica is None:
        return None, "primary_no_replica"
    if not replica.usable:
        return None, "primary_replica_skipped"
    written = _written_position(request)
    if written is not None and replica.replay_lsn < written:
        return None, "primary_own_write"
    return replica, "replica"


@asynccontextmanager
async def read_connection(request: HTTPConnection) -> AsyncIterator[asyncpg.Connection]:
    """A connection for read-only work: the replica when it may serve this request, else
    the primary (`db.connection`). Sets `request.state.read_from_replica` for the page's
    "may be a few seconds old" note."""
    replica, target = _target(request)
    if replica is not None:
        try:
            conn = await db.checkout(replica.pool, POLL_TIMEOUT_SECONDS)
        except db.DatabaseUnavailable as exc:
            log.warning("replica unavailable, reading from the primary: %s", exc)
            replica.usable = replica.reachable = False
            replica, target = None, "primary_replica_skipped"
        else:
            metrics.REPLICA_READS.labels(target).inc()
            request.state.read_from_replica = True
            failure: BaseException | None = None
            try:
                yield conn
            except Exception as exc:
                failure = exc
                if db.is_connection_failure(exc):
                    raise db.unavailable(exc) from exc
                raise
            finally:
                await db.checkin(replica.pool, conn, failure, POLL_TIMEOUT_SECONDS)
            return
    metrics.REPLICA_READS.labels(target).inc()
    async with db.connection(request) as conn:
        yield conn


def read_pool(request: HTTPConnection) -> asyncpg.Pool:
    """The pool a long read (a CSV export) should draw from, by the same rule."""
    replica, target = _target(request)
    metrics.REPLICA_READS.labels(target).inc()
    if replica is None:
        return request.app.state.pool
    request.state.read_from_replica = True
    return replica.pool


async def note_write(request: HTTPConnection, conn: asyncpg.Connection) -> None:
    """Remember, after a committed write on `conn` (the primary), where the primary's WAL
    stands: this client's reads go to the primary until the replica has replayed it."""
    if getattr(request.app.state, "replica", None) is None:
        return
    request.state.wal_position = await conn.fetchval(_LSN_SQL)


class WritePositionMiddleware:
    """Sets the WAL-position cookie on the response to an unsafe request (a write, or
    possibly one): from `note_write`, else read from the primary as the response starts,
    which is after the handler committed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        starlette_app: Starlette = scope["app"]
        if getattr(starlette_app.state, "replica", None) is None:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                position = scope.get("state", {}).get("wal_position")
                if position is None:
                    position = await _primary_position(starlette_app)
                headers = MutableHeaders(scope=message)
                headers.append("set-cookie", _cookie(starlette_app.state.settings, position))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def _primary_position(app: Starlette) -> int:
    settings: Settings = app.state.settings
    try:
        async with db.acquire(app.state.pool, settings.pool_acquire_timeout) as conn:
            position: int = await conn.fetchval(_LSN_SQL)
            return position
    except (db.DatabaseUnavailable, asyncpg.PostgresError) as exc:
        log.warning("WAL position not read after a write, reading from the primary: %s", exc)
        return UNKNOWN_POSITION


def _cookie(settings: Settings, position: int) -> str:
    value = _signer(settings).sign(str(position).encode("ascii")).decode("ascii")
    # long enough to outlast any lag the replica is still used with
    max_age = int(max(300.0, 3 * settings.replica_max_lag_s))
    secure = "; Secure" if settings.secure_cookies else ""
    return f"{COOKIE}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}"
