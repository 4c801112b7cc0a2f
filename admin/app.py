"""create_app(settings) -> Starlette: the route table, middleware and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator

import asyncpg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from admin import db, embedded, replica
from admin.access import Access, route
from admin.audit.pages import audit_log
from admin.csvio import exporting
from admin.csvio.routes import csv_routes
from admin.display import money
from admin.live import change_feed, dashboard, order_feed
from admin.live import runtime as live
from admin.migrations import migrate
from admin.ops import health, metrics, observe
from admin.ops.metrics_page import metrics_route, serve_separately
from admin.resources import catalog
from admin.resources.refresh import refresh_tables
from admin.resources.registry import read_at_startup
from admin.resources.routes import resource_routes
from admin.settings import Settings, load_settings
from admin.staff import cache as staff_cache
from admin.staff import login
from admin.staff.account import account_page, change_password, change_time_zone
from admin.staff.pages import (
    staff_create,
    staff_list,
    staff_reset_password,
    staff_set_active,
    staff_set_role,
)
from admin.web import errors
from admin.web.headers import SecurityHeadersMiddleware
from admin.web.paths import STATIC_DIR

log = logging.getLogger("admin.app")

GC_GEN0_THRESHOLD = 20_000
# at shutdown, after uvicorn's grace period: how long running exports get to record their
# abort, and the pool to close, before its connections are dropped
EXPORT_ABORT_SECONDS = 5.0
POOL_CLOSE_SECONDS = 3.0


def routes() -> list[BaseRoute]:
    """Every route with the access rule it needs; tests walk this table."""
    return [
        # ---- public
        route(
            "/healthz",
            health.healthz,
            access=Access.PUBLIC,
            name="healthz",
            uses_session=False,
        ),
        route("/login", login.login_page, access=Access.PUBLIC, name="login"),
        route("/login", login.login, access=Access.PUBLIC, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        # ---- staff
        route("/logout", login.logout, access=Access.STAFF, methods=["POST"], name="logout"),
        route(
            "/logout/everywhere",
            login.logout_everywhere,
            access=Access.STAFF,
            methods=["POST"],
            name="logout_everywhere",
        ),
        route("/", dashboard.dashboard, access=Access.STAFF, name="dashboard"),
        # ---- live events (SSE)
        route("/events", order_feed.events_stream, access=Access.STAFF, name="events"),
        route(
            "/live/changes",
            change_feed.changes_stream,
            access=Access.STAFF,
            name="live_changes",
        ),
        route("/live/chart", dashboard.chart, access=Access.STAFF, name="live_chart"),
        # ---- staff, my account, audit log
        route("/staff", staff_list, access=Access.ADMIN, name="staff"),
        route("/staff", staff_create, access=Access.ADMIN, methods=["POST"]),
        route(
            "/staff/{staff_id}/active",
            staff_set_active,
            access=Access.ADMIN,
            methods=["POST"],
        ),
        route(
            "/staff/{staff_id}/role",
            staff_set_role,
            access=Access.ADMIN,
            methods=["POST"],
        ),
        route(
            "/staff/{staff_id}/password",
            staff_reset_password,
            access=Access.ADMIN,
            methods=["POST"],
        ),
        route("/account", account_page, access=Access.STAFF, name="account"),
        route("/account/password", change_password, access=Access.STAFF, methods=["POST"]),
        route("/account/time-zone", change_time_zone, access=Access.STAFF, methods=["POST"]),
        route("/audit", audit_log, access=Access.ADMIN, name="audit"),
        route("/tables/refresh", refresh_tables, access=Access.ADMIN, methods=["POST"]),
        # ---- Prometheus (admins, or the METRICS_TOKEN bearer)
        metrics_route(),
        # ---- every table's pages: last, so the panel's own paths win
        *csv_routes(),
        *resource_routes(),
    ]


async def _prepare_database(settings: Settings) -> None:
    """Apply pending migrations over one short-lived connection."""
    conn = await db.connect(settings)
    try:
        await migrate(conn)
    finally:
        await conn.close()


async def close_pool(pool: asyncpg.Pool) -> None:
    """Close gracefully if every connection comes back in time, else drop them; a
    connection the server already cut is dropped too (saying goodbye on it would fail)."""
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
    except TimeoutError:
        log.warning("pool not closed within %.0f s: terminating it", POOL_CLOSE_SECONDS)
        pool.terminate()
    except db.CONNECTION_FAILURES as exc:
        log.warning("pool closed with a connection already lost: %s", exc)
        pool.terminate()


def _observe(app: Starlette) -> None:
    """JSON logs when configured, this app's gauges in /metrics, the separate metrics port."""
    settings: Settings = app.state.settings
    if settings.log_json:
        observe.configure_json_logs()
        # one JSON line per request replaces uvicorn's access log
        logging.getLogger("uvicorn.access").disabled = True

    def gauges() -> dict[str, float]:
        values = db.pool_gauges(app.state.pool)
        hub = live.running_hub(app)
        values["admin_sse_clients"] = hub.client_count if hub is not None else 0
        standby: replica.Replica | None = getattr(app.state, "replica", None)
        if standby is not None:
            values.update(standby.gauges())
        return values

    metrics.add_source(id(app), gauges)
    serve_separately(settings)


# How long a thread may keep the GIL while the event loop waits for it (Python's default
# is 5 ms). When an import's screens ran in a worker thread beside the loop feeding its
# COPY, at 5 ms the loop stalled for 5-12 ms a hundred times a second, and the COPY's
# backend waited for data (ClientRead) 2-3% of its time; at 0.5 ms, a third as long. The
# screens now run on the loop itself (csvio.screens.Screen.take); the interval still bounds
# what any other worker thread (a whole file screened, an error file written) costs it.
GIL_SWITCH_SECONDS = 0.0005


def create_app(settings: Settings | None = None, *, pool: asyncpg.Pool | None = None) -> Starlette:
    """The application. Pass `pool` to reuse one (tests); otherwise the lifespan opens it."""
    settings = settings or load_settings()
    money.configure(settings.currency)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server = None
        own_pool = pool is None
        if own_pool:
            current = app.state.settings
            if current.embedded:
                server = await asyncio.to_thread(embedded.start, current.data_dir)
                current = current.with_database(server.get_uri())
                app.state.settings = current
            await _prepare_database(current)
            app.state.pool = await db.create_pool(current)
            await replica.start(app)
            health.start(app)
            live.start(app)
            staff_cache.start(
                app,
                current.listen_database_url or current.database_url or "",
                f"{db.APPLICATION_NAME} staff",
                current.staff_cache_s,
            )
            # kept referenced: a task nobody holds may be collected before it ends
            app.state.catalog_read = asyncio.create_task(read_at_startup(app))
            _observe(app)
            # What startup built lives as long as the process: leave it out of every garbage
            # collection (page rendering allocates enough to trigger one nearly every request).
            gc.collect()
            gc.freeze()
            # A page render allocates thousands of short-lived objects; the default gen-0
            # threshold (700) then runs a collection several times per request.
            gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            metrics.remove_source(id(app))
            await live.stop(app)
            await staff_cache.stop(app)
            await exporting.abort_all(app.state.exports, EXPORT_ABORT_SECONDS)
            await health.stop(app)
            await replica.stop(app)
            if own_pool:
                await close_pool(app.state.pool)
            if server is not None:
                await asyncio.to_thread(embedded.stop, server)

    table = routes()
    app = Starlette(
        routes=table,
        middleware=[
            Middleware(
                observe.ObserveMiddleware,
                template=observe.route_templates(table),
                json_logs=settings.log_json,
            ),
            Middleware(SecurityHeadersMiddleware),
            Middleware(replica.WritePositionMiddleware),
        ],
        exception_handlers={
            HTTPException: errors.http_exception,
            db.DatabaseUnavailable: errors.database_unavailable,
            catalog.CatalogLocked: errors.catalog_locked,
            asyncpg.LockNotAvailableError: errors.database_busy,
            asyncpg.QueryCanceledError: errors.database_busy,
            **dict.fromkeys(db.CONNECTION_FAILURES, errors.connection_failure),
            500: errors.server_error,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pool = pool
    app.state.replica = None
    app.state.exports = set()
    return app
